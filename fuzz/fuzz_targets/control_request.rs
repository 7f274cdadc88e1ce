//! Fuzz the control socket's request lines (`status`, `drain`, `ready`): decoded, resolved against a small configuration and refused as the daemon does it; any bytes, no panic, one-line answers (see `ldirectord::fuzzing::control_request`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord::fuzzing::control_request(data);
});
