//! Helpers shared by the parser's integration tests.

/// Fails with every difference at once, so one run shows the whole picture.
pub fn assert_none_differ(failures: &[String], cases: usize) {
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases,
        failures.join("\n")
    );
}
