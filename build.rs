//! Compiles the PostgreSQL tests as ignored unless a server is configured: `cargo test` then
//! reports them as `ignored` (not a silent `ok`). `PAYGLOT_TEST_POSTGRES` (the server's URL)
//! or `PAYGLOT_REQUIRE_POSTGRES` (CI: a missing server fails the tests) turns them on.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rerun-if-env-changed=PAYGLOT_TEST_POSTGRES");
    println!("cargo::rerun-if-env-changed=PAYGLOT_REQUIRE_POSTGRES");
    println!("cargo::rerun-if-changed=build.rs");
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("PAYGLOT_TEST_POSTGRES") || set("PAYGLOT_REQUIRE_POSTGRES") {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
