//! Fuzz the `http://` check's HTTP/1.1 response reader (head, then a body framed by length, chunks or close): any bytes, no panic, no hang (see `ldirectord_checks::fuzzing::http_response`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord_checks::fuzzing::http_response(data);
});
