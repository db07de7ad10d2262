//! cargo-fuzz target: `payglot::fuzz::routes_yaml` must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| payglot::fuzz::routes_yaml(data));
