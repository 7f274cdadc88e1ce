//! Fuzz an NNTP greeting: any bytes, no panic, no hang (see `ldirectord_checks::fuzzing::nntp`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord_checks::fuzzing::nntp(data);
});
