#![no_main]
//! The proxy's request-head parser on arbitrary bytes.

libfuzzer_sys::fuzz_target!(|data: &[u8]| nanobox::proxy::fuzz::head(data));
