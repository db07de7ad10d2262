//! payglot's notifications verified by code payglot did not write: the merchant receivers in
//! `examples/receivers/` (Python with the PyPI `standardwebhooks` library, Node.js with the npm
//! one, Java by the specification with the JDK) run as real processes behind a real gateway. A
//! receiver acks (204) only what its library verifies, so an event marked delivered is one the
//! library accepted. During a secret rotation payglot sends both signatures: a receiver holding
//! either secret verifies; one holding neither refuses and the event is not delivered.
//!
//! Needs python3 with `standardwebhooks` (pip install standardwebhooks), node with
//! `examples/receivers/node/node_modules` (npm ci there) and a JDK; `.ci/run` installs them.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The secret being rotated out and the one taking over (both valid `whsec_` values).
const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_LIrClefpmo+omoV0WnJFuNnl8OelJMSwHU5ZEft6ErU=";
const WRONG: &str = "whsec_3sXzT7hbGgwK5nH2QYqJ0pVd8fLr1cUeMiNoAa9kBwI=";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/receivers")
}

/// A running receiver and the lines it printed.
struct Receiver {
    _child: KillOnDrop,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start(mut command: Command, secret: &str) -> Receiver {
        let port = free_port();
        let mut child = command
            .env("WEBHOOK_SECRET", secret)
            .env("PORT", port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Default::default();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let receiver = Receiver { _child: KillOnDrop(child), port, lines };
        eventually("the receiver to listen", Duration::from_secs(30), || {
            let up = receiver.printed("listening");
            async move { up.then_some(()) }
        })
        .await;
        receiver
    }

    fn printed(&self, text: &str) -> bool {
        self.lines.lock().unwrap().iter().any(|l| l.contains(text))
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/notify", self.port)
    }
}

fn python() -> Command {
    let ok = Command::new("python3").args(["-c", "import standardwebhooks"]).status().is_ok_and(|s| s.success());
    assert!(ok, "python3 with the standardwebhooks package is needed: pip install standardwebhooks");
    let mut c = Command::new("python3");
    c.arg(examples().join("python/receiver.py"));
    c
}

fn node() -> Command {
    let dir = examples().join("node");
    assert!(
        dir.join("node_modules/standardwebhooks").exists(),
        "the Node.js receiver's library is needed: (cd examples/receivers/node && npm ci)"
    );
    let mut c = Command::new("node");
    c.arg(dir.join("receiver.js"));
    c
}

fn java() -> Command {
    let out = std::env::temp_dir().join(format!("payglot-receiver-java-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let built = Command::new("javac")
        .arg("-d")
        .arg(&out)
        .arg(examples().join("java/Receiver.java"))
        .status()
        .expect("a JDK (javac) is needed for the Java receiver");
    assert!(built.success(), "javac Receiver.java failed");
    let mut c = Command::new("java");
    c.arg("-cp").arg(&out).arg("Receiver");
    c
}

/// A gateway whose merchant rotates its webhook secret from OLD to NEW and sends to `url`.
async fn gateway_for(url: &str) -> Gateway {
    let mut gw = Gateway::new(url);
    let yaml = gw.routes_yaml("xxpay-a").replacen(
        &format!("    key: {MERCHANT_KEY}\n"),
        &format!("    key: {MERCHANT_KEY}\n    webhook_secret: {OLD}\n    next_webhook_secret: {NEW}\n"),
        1,
    );
    gw.write_config(&yaml);
    gw.start().await;
    gw
}

/// One payment made and paid; returns its payment_id.
async fn paid_payment(gw: &Gateway, out_trade_no: &str) -> String {
    let (status, p) = gw.call("POST", "/v1/payments", &payment_body(out_trade_no, 1980)).await;
    assert_eq!(status, 200, "{p}");
    gw.pay_at_sandbox(p["provider_trade_no"].as_str().unwrap()).await;
    p["payment_id"].as_str().unwrap().to_string()
}

async fn delivered_to(receiver: Command, secret: &str, name: &str) {
    let receiver = Receiver::start(receiver, secret).await;
    let gw = gateway_for(&receiver.url()).await;
    let payment_id = paid_payment(&gw, &format!("RCV-{name}")).await;
    let event_id = eventually(&format!("{name}: the event delivered"), Duration::from_secs(20), || async {
        let events = gw.payment_events(&payment_id).await;
        events.first().filter(|e| e["state"] == "delivered").map(|e| e["id"].as_str().unwrap().to_string())
    })
    .await;
    assert!(receiver.printed(&format!("verified {event_id}")), "{name}: {:?}", receiver.lines.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_library_verifies_payglot_notifications() {
    delivered_to(python(), OLD, "python").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_library_verifies_with_the_secret_being_rotated_in() {
    delivered_to(node(), NEW, "node").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_java_receiver_verifies_by_the_specification() {
    delivered_to(java(), OLD, "java").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_with_neither_secret_refuses_and_nothing_is_delivered() {
    let receiver = Receiver::start(python(), WRONG).await;
    let gw = gateway_for(&receiver.url()).await;
    let payment_id = paid_payment(&gw, "RCV-wrong").await;
    eventually("a refused delivery attempt", Duration::from_secs(20), || async {
        let events = gw.payment_events(&payment_id).await;
        events.first().filter(|e| e["attempts"].as_u64() >= Some(1)).map(|e| e["state"].as_str().map(str::to_string))
    })
    .await;
    let events = gw.payment_events(&payment_id).await;
    assert_ne!(events[0]["state"], "delivered", "{events:?}");
    assert!(receiver.printed("refused"), "{:?}", receiver.lines.lock().unwrap());
}
