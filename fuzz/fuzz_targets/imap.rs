//! Fuzz an IMAP server's greeting and tagged LOGIN answer: any bytes, no panic, no hang (see `ldirectord_checks::fuzzing::imap`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord_checks::fuzzing::imap(data);
});
