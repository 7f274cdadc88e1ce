//! Fuzz the kernel's generic-netlink replies (family lookup, multi-part IPVS dumps, errors, ACKs) through the netlink engine: any bytes, no panic, no hang (see `ldirectord::fuzzing::netlink_replies`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord::fuzzing::netlink_replies(data);
});
