//! The `payglot` command: `serve`, `check`, `sandbox`, `reconcile`, `sign`, `call`,
//! `webhook-secret` and `health`; every one that reads routes.yaml takes it as `--config` (default
//! `routes.yaml`).

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
    Check {
        #[arg(long, short, default_value = "routes.yaml")]
        config: PathBuf,
        /// The file, as earlier versions took it (`payglot check routes.yaml`).
        #[arg(hide = true)]
        file: Option<PathBuf>,
    },
    /// Print a new Standard Webhooks secret (`whsec_` + base64 of 32 random bytes) for a
    /// merchant's `webhook_secret` (or `next_webhook_secret`, to rotate).
    WebhookSecret,
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
    /// Compute (or with --verify, check) a signature the way a dialect or the merchant API
    /// does, printing the exact string that was signed (the key shown as <key>).
    ///
    /// Fields are name=value: xxpay and mct take the message's fields; jings its fields in
    /// signing order; xiaojitong the values to concatenate, in order (mid payid param price
    /// [reallyprice]); zhixiao id= and param=; merchant timestamp= nonce= method= path= body=.
    Sign {
        /// xxpay, mct, jings, xiaojitong, zhixiao, or merchant (the Payglot-Signature).
        dialect: String,
        /// The key (xxpay key, mct open_key, jings token, xiaojitong key, zhixiao appsecret,
        /// merchant key). On the command line it shows in `ps` and shell history: prefer
        /// --key-file or the PAYGLOT_KEY environment variable.
        #[arg(long)]
        key: Option<String>,
        /// A file holding the key (a trailing newline is ignored).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// A signature to compare with; the exit status says whether it matches.
        #[arg(long)]
        verify: Option<String>,
        fields: Vec<String>,
    },
    /// Send a signed merchant API request and print the answer (like curl).
    Call {
        #[arg(long)]
        merchant: String,
        /// The merchant key; prefer --key-file or PAYGLOT_KEY (see `sign`).
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        key_file: Option<PathBuf>,
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        method: String,
        /// Path and query, like /v1/payments/T1001
        path: String,
        /// JSON body (for POST).
        body: Option<String>,
    },
    /// Exit 0 when a gateway answers its liveness check: the container image's HEALTHCHECK
    /// (the image has no curl).
    Health {
        #[arg(long, default_value = "http://127.0.0.1:9901/livez")]
        url: String,
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
        Command::Check { config, file } => check(&file.unwrap_or(config)),
        Command::WebhookSecret => {
            println!("{}", payglot::core::notify::new_webhook_secret());
            ExitCode::SUCCESS
        }
        Command::Serve { config } => serve(config, false),
        Command::Health { url } => health(&url),
        Command::Sandbox { config } => serve(config, true),
        Command::Reconcile { config, provider, date, settle } => reconcile(&config, &provider, &date, settle),
        Command::Sign { dialect, key, key_file, verify, fields } => match key_from(key, key_file) {
            Ok(key) => sign(&dialect, &key, verify.as_deref(), &fields),
            Err(e) => fail(&e),
        },
        Command::Call { merchant, key, key_file, url, method, path, body } => match key_from(key, key_file) {
            Ok(key) => call(&merchant, &key, &url, &method, &path, body.as_deref()),
            Err(e) => fail(&e),
        },
    }
}

/// GETs `url` once (1 s to connect, 3 s in all): 2xx is healthy.
fn health(url: &str) -> ExitCode {
    let runtime = match one_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(payglot::upstream::Upstream::new().send("GET", url, &[], Vec::new(), 1000, 3000)) {
        Ok(a) if (200..300).contains(&a.status) => ExitCode::SUCCESS,
        Ok(a) => fail(&format!("{url}: HTTP {}", a.status)),
        Err(e) => fail(&format!("{url}: {e}")),
    }
}

/// The runtime of a one-shot command (`health`, `call`, `reconcile`).
fn one_thread_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&format!("cannot start the runtime: {e}")))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("{message}");
    ExitCode::FAILURE
}

/// The key of `sign` and `call`: --key, else --key-file, else PAYGLOT_KEY.
fn key_from(key: Option<String>, key_file: Option<PathBuf>) -> Result<String, String> {
    if let Some(k) = key {
        return Ok(k);
    }
    if let Some(path) = key_file {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    std::env::var("PAYGLOT_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| "a key is needed: --key-file FILE, the PAYGLOT_KEY environment variable, or --key".into())
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

/// `payglot sign`: the signature and the string signed, with the key masked.
fn sign(dialect: &str, key: &str, verify: Option<&str>, fields: &[String]) -> ExitCode {
    use payglot::dialects::{self, signing};
    let (shown, signature) = match dialects::spec(dialect) {
        Some(spec) => (spec.cli_sign)(fields, key),
        None if dialect == "merchant" => {
            let map: std::collections::BTreeMap<String, String> = dialects::arg_pairs(fields).into_iter().collect();
            let get = |k: &str| map.get(k).cloned().unwrap_or_default();
            let (ts, nonce, method, path, body) =
                (get("timestamp"), get("nonce"), get("method"), get("path"), get("body"));
            (
                format!("{ts}\n{nonce}\n{method}\n{path}\n{body}  (HMAC-SHA256 with <key>)"),
                payglot::doors::merchant_api::auth::request_signature(
                    key,
                    &ts,
                    &nonce,
                    &method,
                    &path,
                    body.as_bytes(),
                ),
            )
        }
        None => {
            eprintln!("unknown dialect {dialect:?}: {} or merchant", dialects::names());
            return ExitCode::FAILURE;
        }
    };
    println!("string signed: {shown}");
    println!("signature: {signature}");
    match verify {
        None => ExitCode::SUCCESS,
        Some(given) if signing::same_hex_signature(&signature, given.trim()) => {
            println!("verify: matches");
            ExitCode::SUCCESS
        }
        Some(_) => {
            println!("verify: does NOT match");
            ExitCode::FAILURE
        }
    }
}

/// `payglot call`: one signed merchant API request.
fn call(merchant: &str, key: &str, url: &str, method: &str, path: &str, body: Option<&str>) -> ExitCode {
    let runtime = match one_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let method = method.to_ascii_uppercase();
    let body = body.unwrap_or("");
    let ts = payglot::model::now_unix().to_string();
    let nonce = payglot::model::random_id("", 32);
    let signature =
        payglot::doors::merchant_api::auth::request_signature(key, &ts, &nonce, &method, path, body.as_bytes());
    let headers = [
        ("content-type", "application/json"),
        ("payglot-merchant", merchant),
        ("payglot-timestamp", ts.as_str()),
        ("payglot-nonce", nonce.as_str()),
        ("payglot-signature", signature.as_str()),
    ];
    let target = format!("{}{path}", url.trim_end_matches('/'));
    let answer = runtime.block_on(payglot::upstream::Upstream::new().send(
        &method,
        &target,
        &headers,
        body.as_bytes().to_vec(),
        3000,
        30_000,
    ));
    match answer {
        Ok(a) => {
            println!("HTTP {}", a.status);
            println!("{}", String::from_utf8_lossy(&a.body));
            if (200..300).contains(&a.status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{target}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn reconcile(config: &std::path::Path, provider: &str, date: &str, settle: bool) -> ExitCode {
    let runtime = match one_thread_runtime() {
        Ok(r) => r,
        Err(code) => return code,
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
        match payglot::workers::reconcile::reconcile(&gateway, &live, provider, date, settle, now).await {
            Ok(report) => {
                print!("{}", payglot::workers::reconcile::render(&report));
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
    // PAYGLOT_LOG: error, warn, info (default: one line per request) or debug;
    // PAYGLOT_LOG_FORMAT=json for one JSON object per line.
    let level = std::env::var("PAYGLOT_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let builder = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr);
    if std::env::var("PAYGLOT_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        payglot::telemetry::init();
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
        payglot::telemetry::flush().await;
        ExitCode::SUCCESS
    })
}
