//! payglot: a payment protocol translation gateway. One signed merchant API in front of many
//! payment providers; `routes.yaml` picks the provider per payment. See DESIGN.md and the
//! README for the picture; `start` wires the pieces together.

pub mod app;
pub mod config;
pub mod core;
pub mod dialects;
pub mod doors;
pub mod egress;
#[doc(hidden)]
#[cfg(any(test, feature = "test-support"))]
pub mod fuzz;
pub mod http;
pub mod model;
pub mod money;
pub mod routing;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod upstream;
pub mod workers;

use app::Gateway;
use config::reload::{spawn_watchers, ConfigHandle, WatchGuard};
use config::LiveConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// A running gateway: its bound addresses and the way to stop it.
pub struct Running {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub sandbox_listen: Option<SocketAddr>,
    /// The gateway's shared state (`None` for a sandbox-only run).
    pub gateway: Option<Arc<Gateway>>,
    pub sandbox: Option<Arc<sandbox::Sandbox>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _watchers: Option<WatchGuard>,
}

impl Running {
    /// Stops accepting, stops the workers; pending events stay in the store.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Waits until every task has ended (they end on `stop` only).
    pub async fn wait(&mut self) {
        for t in self.tasks.iter_mut() {
            let _ = t.await;
        }
    }
}

async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr} ({what}): {e}"))
}

/// Loads routes.yaml and opens its store: the gateway's shared state, without any listener
/// (for `start`, and for commands such as `payglot reconcile`).
pub async fn open_gateway(config_path: &Path) -> Result<Arc<Gateway>, String> {
    let live = LiveConfig::load(config_path)
        .map_err(|errors| format!("{} is not valid:\n  {}", config_path.display(), errors.join("\n  ")))?;
    let store =
        store::open(&live.config.store).await.map_err(|e| config::secrets::redact_url_passwords(&e.to_string()))?;
    Ok(Arc::new(Gateway {
        clock: Default::default(),
        gone_endpoints: Default::default(),
        config: Arc::new(ConfigHandle::new(live, store.clone())),
        store,
        upstream: Arc::new(upstream::Upstream::new()),
        outbox_wake: Arc::new(Notify::new()),
        limits: Default::default(),
        balances: Default::default(),
        timeline: Default::default(),
        recent_calls: Default::default(),
        checkouts: Default::default(),
    }))
}

/// Loads routes.yaml, opens the store, and starts the listeners, the sandbox (when the file
/// has a `sandbox:` section), the delivery worker and the config watchers.
pub async fn start(config_path: &Path, watch_config: bool) -> Result<Running, String> {
    doors::admin::install_metrics();
    let gateway = open_gateway(config_path).await?;
    let handle = gateway.config.clone();
    let upstream = gateway.upstream.clone();
    let config = handle.current().config.clone();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    let mut sandbox_listen = None;
    let mut sandbox = None;
    if let Some(sb) = sandbox::Sandbox::from_config(&config, upstream.clone()) {
        let listener = bind("sandbox", config.sandbox.as_ref().expect("sandbox config").listen).await?;
        sandbox_listen = listener.local_addr().ok();
        let sb = Arc::new(sb);
        sandbox = Some(sb.clone());
        tasks.push(tokio::spawn(sandbox::serve(listener, sb, shutdown_rx.clone())));
    }

    let listener = bind("merchant API and callbacks", config.listen).await?;
    let listen = listener.local_addr().map_err(|e| e.to_string())?;
    tasks.push(tokio::spawn(server::serve(listener, gateway.clone(), shutdown_rx.clone())));

    let mut admin_listen = None;
    if let Some(addr) = config.admin_listen {
        let listener = bind("admin", addr).await?;
        admin_listen = listener.local_addr().ok();
        tasks.push(tokio::spawn(doors::admin::serve(listener, gateway.clone(), shutdown_rx.clone())));
    }

    tasks.push(tokio::spawn(workers::delivery::run(gateway.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(workers::requery::run(gateway.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(gateway.clone().flush_timeline(shutdown_rx.clone())));

    let watchers = if watch_config { Some(spawn_watchers(handle)?) } else { None };
    let off = || "off".to_string();
    tracing::info!(
        %listen,
        admin = %admin_listen.map_or_else(off, |a| a.to_string()),
        sandbox = %sandbox_listen.map_or_else(off, |a| a.to_string()),
        "payglot serving"
    );
    Ok(Running {
        listen,
        admin_listen,
        sandbox_listen,
        gateway: Some(gateway),
        sandbox,
        shutdown,
        tasks,
        _watchers: watchers,
    })
}

/// Starts only the sandbox of a routes.yaml (`payglot sandbox`): simulated providers for every
/// account whose base_url points at `sandbox.listen`.
pub async fn start_sandbox(config_path: &Path) -> Result<Running, String> {
    let live = LiveConfig::load(config_path)
        .map_err(|errors| format!("{} is not valid:\n  {}", config_path.display(), errors.join("\n  ")))?;
    let config = live.config;
    let upstream = Arc::new(upstream::Upstream::new());
    let sb = sandbox::Sandbox::from_config(&config, upstream.clone())
        .ok_or_else(|| format!("{} has no sandbox: section", config_path.display()))?;
    let listener = bind("sandbox", config.sandbox.as_ref().expect("sandbox config").listen).await?;
    let sandbox_listen = listener.local_addr().ok();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let sb = Arc::new(sb);
    let tasks = vec![tokio::spawn(sandbox::serve(listener, sb.clone(), shutdown_rx))];
    tracing::info!(sandbox = %sandbox_listen.map_or_else(|| "off".to_string(), |a| a.to_string()), "payglot sandbox serving");
    Ok(Running {
        listen: sandbox_listen.expect("bound"),
        admin_listen: None,
        sandbox_listen,
        gateway: None,
        sandbox: Some(sb),
        shutdown,
        tasks,
        _watchers: None,
    })
}
