//! `ldirectord.cf`: the model and the parser.
mod model;
pub use model::*;
