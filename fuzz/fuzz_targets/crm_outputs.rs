//! Fuzz the outputs of crm_resource, crm_node and crm_attribute through the real-server selection: any bytes, no panic, no hang (see `ldirectord::fuzzing::crm_outputs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord::fuzzing::crm_outputs(data);
});
