//! Fuzz an SMTP server's greeting and EHLO/HELO replies (multi-line replies): any bytes, no panic, no hang (see `ldirectord_checks::fuzzing::smtp`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord_checks::fuzzing::smtp(data);
});
