//! Hot reload: a file change, SIGHUP or `POST /admin/reload` builds and validates a new
//! config and swaps it in atomically with `arc-swap`. Requests hold the `Arc` they started
//! with, so they finish on that config. An invalid file is refused, logged and kept as the
//! last error; the old config keeps serving.
//!
//! Listen addresses and the store URL are read at start only: a reload that changes them
//! logs a warning and the new values take effect at the next restart.
//!
//! A reload that deletes a provider account which still holds payments, refunds or payouts
//! that are not final is refused (naming the account and the count): they could never be
//! queried, closed or refunded again. Mark it `retired: true` first and delete it once drained.

use super::LiveConfig;
use crate::store::Store;
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One reload attempt: when, what triggered it, whether the new file was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadAttempt {
    /// Unix seconds.
    pub at: i64,
    /// `file`, `sighup` or `admin`.
    pub trigger: String,
    pub accepted: bool,
}

pub struct ConfigHandle {
    live: ArcSwap<LiveConfig>,
    store: Arc<dyn Store>,
    path: PathBuf,
    last_error: Mutex<Option<String>>,
    last_attempt: Mutex<Option<ReloadAttempt>>,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
}

impl ConfigHandle {
    pub fn new(live: LiveConfig, store: Arc<dyn Store>) -> Self {
        let path = live.source.clone();
        ConfigHandle {
            live: ArcSwap::from_pointee(live),
            store,
            path,
            last_error: Mutex::new(None),
            last_attempt: Mutex::new(None),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        }
    }

    /// The config a new request runs against, start to end.
    pub fn current(&self) -> Arc<LiveConfig> {
        self.live.load_full()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The message of the last refused reload, if the last attempt failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The last reload attempt, if there was one since start.
    pub fn last_attempt(&self) -> Option<ReloadAttempt> {
        self.last_attempt.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Loads the file again; swaps it in if valid and safe, else keeps the old config.
    pub async fn reload(&self, trigger: &str) -> Result<(), String> {
        let result = match LiveConfig::load(&self.path) {
            Ok(new) => self.check_deletions(&new).await.map(|()| new),
            Err(errors) => Err(errors.join("\n")),
        };
        let mut last_error = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        *self.last_attempt.lock().unwrap_or_else(|p| p.into_inner()) = Some(ReloadAttempt {
            at: crate::model::now_unix(),
            trigger: trigger.to_string(),
            accepted: result.is_ok(),
        });
        match result {
            Ok(new) => {
                let old = self.live.load();
                if new.config.listen != old.config.listen
                    || new.config.admin_listen != old.config.admin_listen
                    || new.config.store != old.config.store
                {
                    tracing::warn!("listen addresses and store are read at start; restart to apply their change");
                }
                self.live.store(Arc::new(new));
                *last_error = None;
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(trigger, file = %self.path.display(), "config reloaded");
                Ok(())
            }
            Err(message) => {
                tracing::error!(trigger, file = %self.path.display(), errors = %message, "config reload refused; the previous config keeps serving");
                *last_error = Some(message.clone());
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                Err(message)
            }
        }
    }

    /// Refuses to delete accounts that still hold unfinished payments, refunds or payouts.
    async fn check_deletions(&self, new: &LiveConfig) -> Result<(), String> {
        let old = self.live.load();
        let deleted: Vec<String> =
            old.config.providers.keys().filter(|name| !new.config.providers.contains_key(*name)).cloned().collect();
        if deleted.is_empty() {
            return Ok(());
        }
        let counts =
            self.store.open_counts(&deleted).await.map_err(|e| format!("cannot check deleted accounts: {e}"))?;
        let blocking: Vec<String> = counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| {
                format!("providers.{name}: cannot be deleted while it holds {n} payment(s), refund(s) or payout(s) that are not final; mark it `retired: true` until they are")
            })
            .collect();
        if blocking.is_empty() {
            Ok(())
        } else {
            Err(blocking.join("\n"))
        }
    }
}

/// How often the config file is read to see whether it changed.
const FILE_POLL: Duration = Duration::from_secs(1);

/// Reloads on SIGHUP and on changes to the config file, until the returned guard is dropped.
///
/// The file is read once a second and compared with what was read before, rather than watched
/// with inotify: a directory watch woke the gateway for every write to the SQLite file that
/// lives beside routes.yaml by default (callgrind: 16,000–23,000 instructions a create, up to
/// 6,000 a query, and the kernel's wake-ups), and reading the text sees every way a file
/// changes (an editor's rename, a write in place, a Kubernetes ConfigMap's symlink swap, a
/// network filesystem) at the cost of a read of a few kilobytes a second and a reload up to a
/// second later.
pub fn spawn_watchers(handle: Arc<ConfigHandle>) -> Result<WatchGuard, String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();

    let file = {
        let (tx, path) = (tx.clone(), handle.path.clone());
        let first = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        tokio::spawn(async move {
            let mut seen = Some(first);
            let mut tick = tokio::time::interval(FILE_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                // Off the runtime's threads: the file may sit on a slow (network) filesystem.
                let read = path.clone();
                let now = tokio::task::spawn_blocking(move || std::fs::read(read).ok()).await.ok().flatten();
                if now.is_some() && now != seen {
                    seen = now;
                    let _ = tx.send("file change");
                }
            }
        })
    };

    #[cfg(unix)]
    let sighup = {
        let tx = tx.clone();
        tokio::spawn(async move {
            let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                return;
            };
            while signal.recv().await.is_some() {
                let _ = tx.send("SIGHUP");
            }
        })
    };

    let worker = tokio::spawn(async move {
        let mut last_text: Option<String> = None;
        while let Some(trigger) = rx.recv().await {
            // Editors write in several steps; let the file settle, then reload once.
            tokio::time::sleep(Duration::from_millis(150)).await;
            while rx.try_recv().is_ok() {}
            let text = std::fs::read_to_string(&handle.path).ok();
            if trigger == "file change" && text.is_some() && text == last_text {
                continue;
            }
            last_text = text;
            let _ = handle.reload(trigger).await;
        }
    });
    Ok(WatchGuard {
        tasks: vec![
            file,
            worker,
            #[cfg(unix)]
            sighup,
        ],
    })
}

/// Keeps the watchers alive; dropping it stops them.
pub struct WatchGuard {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
