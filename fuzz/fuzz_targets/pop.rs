//! Fuzz a POP3 server's greeting and login answers: any bytes, no panic, no hang (see `ldirectord_checks::fuzzing::pop`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord_checks::fuzzing::pop(data);
});
