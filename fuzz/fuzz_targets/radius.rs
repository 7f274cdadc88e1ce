//! Fuzz a RADIUS reply, as sent and signed with the secret: any bytes, no panic, no hang (see `ldirectord_checks::fuzzing::radius`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord_checks::fuzzing::radius(data);
});
