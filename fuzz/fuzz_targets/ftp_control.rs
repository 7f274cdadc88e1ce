//! Fuzz an FTP control connection: greeting, login, PASV/EPSV and its port: any bytes, no panic, no hang (see `ldirectord_checks::fuzzing::ftp_control`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ldirectord_checks::fuzzing::ftp_control(data);
});
