//! Packaging: the container's routes.yaml passes `payglot check` with its secrets from the
//! environment, the Grafana dashboard names only metrics payglot exports (from the datasource
//! Grafana is provisioned with), and the image's HEALTHCHECK command tells a live gateway from
//! a dead one. (`docker compose config` validates docker-compose.yml in `.ci/run`: no Docker
//! engine runs here.)

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_container_routes_yaml_passes_check_with_its_secrets_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin_token");
    std::fs::write(&token, "container-admin-token-0123456789\n").unwrap();
    // The file as the container sees it, with the Docker secret where the test put it.
    let text = repo("deploy/routes.yaml");
    assert!(text.contains("file:/run/secrets/admin_token"));
    let config = dir.path().join("routes.yaml");
    std::fs::write(&config, text.replace("/run/secrets/admin_token", token.to_str().unwrap())).unwrap();
    let check = |envs: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_payglot"))
            .args(["check", "--config", config.to_str().unwrap()])
            .env_clear()
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let envs = [
        ("PG_PASSWORD", "pg-secret-pass-4242"),
        ("PAYGLOT_PUBLIC_URL", "https://pay.example.edu"),
        ("PAYGLOT_DEMO_SCHOOL_KEY", "demo-school-container-key-0001"),
        ("PAYGLOT_DEMO_SCHOOL_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ];
    let (ok, output) = check(&envs);
    assert!(ok, "{output}");
    for secret in ["pg-secret-pass-4242", "demo-school-container-key-0001", "container-admin-token"] {
        assert!(!output.contains(secret), "check shows no secret: {output}");
    }
    // Every secret comes from outside the file: without the environment the check fails,
    // naming what is missing.
    let (ok, output) = check(&envs[1..]);
    assert!(!ok && output.contains("PG_PASSWORD"), "{output}");
    // Listens where a container is reached, keeps state in the compose file's PostgreSQL.
    for line in
        ["listen: 0.0.0.0:8080", "admin_listen: 0.0.0.0:9901", "store: postgres://payglot:${PG_PASSWORD}@postgres:"]
    {
        assert!(text.contains(line), "{line}");
    }
}

#[test]
fn the_dashboard_names_only_metrics_payglot_exports() {
    let dashboard: serde_json::Value = serde_json::from_str(&repo("deploy/grafana/dashboards/payglot.json")).unwrap();
    let datasources = repo("deploy/grafana/provisioning/datasources/prometheus.yml");
    let mut source = String::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                source.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = std::collections::HashSet::new();
    let mut named = std::collections::BTreeSet::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "panel ids are unique");
        let grid = &panel["gridPos"];
        assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24, "{panel}");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let uid = target["datasource"]["uid"].as_str().unwrap();
            assert!(datasources.contains(&format!("uid: {uid}")), "datasource {uid} is provisioned");
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("payglot_") {
                let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                rest = &rest[at + name.len()..];
                let metric = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name)
                    .to_string();
                named.insert(metric);
            }
        }
    }
    assert!(named.len() >= 12, "{named:?}");
    for metric in &named {
        assert!(
            source.contains(&format!("\"{metric}\"")),
            "the dashboard names {metric}, which payglot does not export"
        );
    }
    for wanted in ["payglot_outbox_oldest_pending_age_seconds", "payglot_callbacks_total", "payglot_circuit_open"] {
        assert!(named.contains(wanted), "the dashboard shows {wanted}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_healthcheck_tells_a_live_gateway_from_a_dead_one() {
    let dockerfile = repo("Dockerfile");
    let healthcheck = dockerfile.lines().skip_while(|l| !l.starts_with("HEALTHCHECK")).take(2).collect::<String>();
    assert!(healthcheck.contains("\"/usr/local/bin/payglot\", \"health\""), "{healthcheck}");
    let mut gw = Gateway::new("http://127.0.0.1:9/notify");
    gw.start().await;
    let health = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_payglot"))
            .args(["health", "--url", &format!("http://127.0.0.1:{port}/livez")])
            .output()
            .unwrap()
    };
    let live = health(gw.admin_port);
    assert!(live.status.success(), "{}", String::from_utf8_lossy(&live.stderr));
    let dead = health(free_port());
    assert!(!dead.status.success());
    assert!(String::from_utf8_lossy(&dead.stderr).contains("/livez"), "it says what it tried");
}
