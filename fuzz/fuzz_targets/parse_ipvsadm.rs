//! Fuzz the `ipvsadm -L -n` listing parser: any bytes, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = ldirectord_parsers::ipvsadm::parse(&text);
});
