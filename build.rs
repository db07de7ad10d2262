//! Names the commit the binary is built from (`payglot_build_info{commit}`): `PAYGLOT_COMMIT`
//! when the build sets it (the Docker build has no `.git`), else `git rev-parse`, else "unknown".
//!
//! Compiles the PostgreSQL tests as ignored unless a server is configured: `cargo test` then
//! reports them as `ignored` (not a silent `ok`). `PAYGLOT_TEST_POSTGRES` (the server's URL)
//! or `PAYGLOT_REQUIRE_POSTGRES` (CI: a missing server fails the tests) turns them on.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rerun-if-env-changed=PAYGLOT_TEST_POSTGRES");
    println!("cargo::rerun-if-env-changed=PAYGLOT_REQUIRE_POSTGRES");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-env=PAYGLOT_COMMIT={}", commit());
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("PAYGLOT_TEST_POSTGRES") || set("PAYGLOT_REQUIRE_POSTGRES") {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}

fn commit() -> String {
    println!("cargo::rerun-if-env-changed=PAYGLOT_COMMIT");
    if let Some(commit) = std::env::var("PAYGLOT_COMMIT").ok().filter(|c| !c.is_empty()) {
        return commit;
    }
    // Rebuild when HEAD moves (a checkout or a commit), only where there is a .git to watch.
    for watched in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(watched).exists() {
            println!("cargo::rerun-if-changed={watched}");
        }
    }
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".into())
}
