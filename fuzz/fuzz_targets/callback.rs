//! cargo-fuzz target: `payglot::fuzz::callback` must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| payglot::fuzz::callback(data));
