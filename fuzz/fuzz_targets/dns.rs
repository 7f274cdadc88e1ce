//! Fuzz a DNS response (hickory's decoder and our verdict), over UDP and length-prefixed TCP: any bytes, no panic, no hang (see `ldirectord_checks::fuzzing::dns`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord_checks::fuzzing::dns(data);
});
