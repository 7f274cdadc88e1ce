//! Fuzz a SIP reply, as a UDP datagram and as a TCP line: any bytes, no panic, no hang (see `ldirectord_checks::fuzzing::sip`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord_checks::fuzzing::sip(data);
});
