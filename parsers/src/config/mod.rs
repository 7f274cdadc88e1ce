//! `ldirectord.cf`: the model, the parser, diagnostics and a renderer.
//! - `model`: the typed configuration ([`Config`], [`VirtualService`], [`RealServer`], …);
//! - `lex`: stock's regular expressions as small `nom` parsers;
//! - `parse/`: the reader (line loop, directive table, values, block resolution);
//! - [`resolve`]: host and service names, as stock resolves them;
//! - `diag`: errors and warnings with spans, in stock's words;
//! - [`render`]: a [`Config`] back into `ldirectord.cf` text.
mod diag;
mod lex;
mod model;
mod parse;
pub mod render;
pub mod resolve;

pub use diag::{ConfigError, Diagnostic, Origin, Severity};
pub use model::*;
pub use parse::{
    Directive, ParseOptions, Parsed, Scope, directives, load, load_with, parse_str, parse_with,
};
