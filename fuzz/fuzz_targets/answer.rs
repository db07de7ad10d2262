//! cargo-fuzz target: `payglot::fuzz::answer` must not panic on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| payglot::fuzz::answer(data));
