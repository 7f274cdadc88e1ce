//! Fuzz the OCF agents' environment (NAME=VALUE lines): any bytes, no panic, no hang (see `ldirectord::fuzzing::ocf_environment`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord::fuzzing::ocf_environment(data);
});
