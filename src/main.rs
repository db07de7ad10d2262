//! The `payglot` command: `serve`, `check`, and `sandbox`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "payglot", version, about = "Payment protocol translation gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (and the sandbox providers, when routes.yaml has a `sandbox:` section).
    Serve {
        #[arg(long, short, default_value = "routes.yaml")]
        config: PathBuf,
    },
    /// Validate a routes.yaml: print a summary and the route table, or every error.
    Check { config: PathBuf },
    /// Compare one provider account's payments of one day (Beijing time) with what the provider
    /// says, and print the differences; `--settle` settles proven missed payments.
    Reconcile {
        #[arg(long, short, default_value = "routes.yaml")]
        config: PathBuf,
        #[arg(long)]
        provider: String,
        /// YYYY-MM-DD
        #[arg(long)]
        date: String,
        #[arg(long)]
        settle: bool,
    },
    /// Run only the simulated providers of routes.yaml's `sandbox:` section.
    Sandbox {
        #[arg(long, short, default_value = "routes.yaml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Serve { config } => serve(config, false),
        Command::Sandbox { config } => serve(config, true),
        Command::Reconcile { config, provider, date, settle } => reconcile(&config, &provider, &date, settle),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let base = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    match payglot::config::parse(&text, &base, &|name| std::env::var(name).ok()) {
        Ok(config) => {
            println!("{} is valid", path.display());
            print!("{}", payglot::config::summary(&config));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{} has {} error(s):", path.display(), errors.len());
            for e in errors {
                eprintln!("  {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn reconcile(config: &std::path::Path, provider: &str, date: &str, settle: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let gateway = match payglot::open_gateway(config).await {
            Ok(g) => g,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let live = gateway.config.current();
        let now = payglot::model::now_unix();
        match payglot::callbacks::reconcile::reconcile(&gateway, &live, provider, date, settle, now).await {
            Ok(report) => {
                print!("{}", payglot::callbacks::reconcile::render(&report));
                // Settled events are in the outbox; the running gateway delivers them.
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// Runs the gateway (or with `sandbox_only`, just its sandbox) until SIGTERM or Ctrl-C.
fn serve(config: PathBuf, sandbox_only: bool) -> ExitCode {
    // PAYGLOT_LOG: error, warn, info (default: one line per request) or debug.
    let level = std::env::var("PAYGLOT_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let started =
            if sandbox_only { payglot::start_sandbox(&config).await } else { payglot::start(&config, true).await };
        let running = match started {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("cannot listen for SIGTERM: {e}");
                    return ExitCode::FAILURE;
                }
            };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("stopping; pending events stay in the store");
        running.stop().await;
        ExitCode::SUCCESS
    })
}
