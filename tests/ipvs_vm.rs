//! The real-IPVS suite: boots a qemu VM with Debian's cloud kernel (IPVS modules) and runs
//! every scenario of `tests/vm/guest/scenarios/` in it (`tests/vm/run`, see its header).
//! The engines are compared with the real `ipvsadm`, and the daemon directs real HTTP
//! servers in network namespaces.
//!
//! One VM boot runs all scenarios (a boot costs seconds under TCG); the test prints one
//! line per scenario and fails naming those that failed. It never skips: a machine that
//! cannot build or boot the VM fails with the harness's message (install the packages in
//! `tests/vm/apt-packages.txt`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

#[test]
fn real_ipvs_scenarios_in_a_vm() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let mut child = Command::new(repo.join("tests/vm/run"))
        .env("LDRS_VM_LDIRECTORD", env!("CARGO_BIN_EXE_ldirectord"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run tests/vm/run (bash)");
    let mut results = Vec::new();
    let mut figures = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line.expect("the VM's console is text");
        println!("{line}");
        if let Some(rest) = line.strip_prefix("SCENARIO ") {
            results.push(rest.to_owned());
        }
        if line.contains("FIGURE") || line.contains("BENCH") {
            figures.push(line);
        }
    }
    let status = child.wait().expect("wait for tests/vm/run");
    println!("--- real IPVS VM: {:.0} s", started.elapsed().as_secs_f64());
    for figure in &figures {
        println!("{figure}");
    }
    for result in &results {
        println!("{result}");
    }
    let failed: Vec<&String> = results.iter().filter(|r| r.contains(" FAIL ")).collect();
    let passed = results.iter().filter(|r| r.contains(" PASS ")).count();
    println!("{passed} of {} scenarios passed", results.len());
    assert!(
        failed.is_empty(),
        "scenarios failed in the VM: {failed:?} (console above)"
    );
    assert!(
        status.success(),
        "tests/vm/run failed with {status} after {} scenario(s): see its message above; \
         the harness needs the packages in tests/vm/apt-packages.txt",
        results.len()
    );
    assert!(!results.is_empty(), "the VM ran no scenario");
}
