//! `ldirectord.cf`: the model, the parser, diagnostics and a renderer.
mod diag;
mod lex;
mod model;
mod parse;
pub mod render;
pub mod resolve;

pub use diag::{ConfigError, Diagnostic, Origin, Severity};
pub use model::*;
pub use parse::{ParseOptions, Parsed, load, load_with, parse_str, parse_with};
