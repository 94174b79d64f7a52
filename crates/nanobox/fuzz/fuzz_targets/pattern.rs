#![no_main]
//! The allowlist pattern parser and matcher (and the CIDR and upstream-URL parsers) on arbitrary
//! text: first line = comma-separated patterns, other lines = hosts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| nanobox::proxy::fuzz::pattern(data));
