//! Placeholder until this checker is written (owned by a helper; replaced, not kept).
use std::sync::Arc;

use crate::{BuildError, CheckSpec, Checker};

pub fn build(_spec: &CheckSpec) -> Result<Arc<dyn Checker>, BuildError> {
    Err(BuildError::Invalid("ldap checks are not built yet".into()))
}
