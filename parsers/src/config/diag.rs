//! Diagnostics: every error and warning keeps stock ldirectord's message text (so the
//! compatibility form `Error [PID] reading file PATH at line N: MESSAGE` is exact) and adds
//! what an operator needs to fix it: the column, the offending line with a caret, and what
//! would be valid.

use crate::config::lex;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::model::Span;

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Severity {
    Error,
    Warning,
}

/// Which diagnostics stock ldirectord gives too. Ours-only warnings (`--test` hints such as
/// "this virtual is never checked") are not printed in the compatibility form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Origin {
    /// Stock ldirectord prints this (same text, same line).
    Stock,
    /// ldirectord-rs only: a hint about a trap, or a deliberate deviation.
    Extension,
}

/// One error or warning about a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub origin: Origin,
    /// The message as stock ldirectord words it (or ours, for extension diagnostics).
    pub message: String,
    /// Where: line 0 means the whole file (stock prints no line then).
    pub span: Span,
    /// A short label under the caret.
    pub label: Option<String>,
    /// What would be valid, or how to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            origin: Origin::Stock,
            message: message.into(),
            span,
            label: None,
            help: None,
        }
    }
    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }
    pub fn extension(mut self) -> Diagnostic {
        self.origin = Origin::Extension;
        self
    }
    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = Some(label.into());
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Stock's one-line form: `Error [PID] reading file PATH at line N: MESSAGE`
    /// (without ` reading file … at line N` when no line applies). No trailing newline.
    pub fn stock_format(&self, pid: u32, path: &Path) -> String {
        let word = match self.severity {
            Severity::Error => "Error",
            Severity::Warning => "Warning",
        };
        if self.span.line > 0 {
            format!(
                "{word} [{pid}] reading file {} at line {}: {}",
                path.display(),
                self.span.line,
                self.message
            )
        } else {
            format!("{word} [{pid}]: {}", self.message)
        }
    }

    /// The modern form: `error: …`, `--> file:line:column`, the line with a caret, help.
    /// `source` is the file's text (for the excerpt).
    pub fn render(&self, path: &Path, source: &str) -> String {
        let mut out = String::new();
        let word = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // Stock's messages may echo the raw line with its newline: keep the first line.
        let headline = self.message.lines().next().unwrap_or("").trim_end();
        let _ = writeln!(out, "{word}: {headline}");
        if self.span.line == 0 {
            let _ = writeln!(out, "  --> {}", path.display());
        } else {
            let _ = writeln!(
                out,
                "  --> {}:{}:{}",
                path.display(),
                self.span.line,
                self.span.column
            );
            if let Some(text) = source.lines().nth(self.span.line - 1) {
                let num = self.span.line.to_string();
                let pad = " ".repeat(num.len());
                let masked = mask_secret(text.trim_end_matches('\r'));
                let shown = masked.as_str();
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{num} | {}", visible(shown));
                let col = self.span.column.max(1);
                let prefix: String = shown
                    .chars()
                    .take(col - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let width = self
                    .span
                    .len
                    .clamp(1, shown.chars().count().saturating_sub(col - 1).max(1));
                let _ = write!(out, "{pad} | {}{}", visible(&prefix), "^".repeat(width));
                match &self.label {
                    Some(label) => {
                        let _ = writeln!(out, " {label}");
                    }
                    None => out.push('\n'),
                }
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }
}

/// What a diagnostic shows instead of a `passwd=` or `secret=` value.
pub const REDACTED: &str = "***";

/// The value of a `passwd=` or `secret=` line (as written, quotes included), if `line` is
/// one and the value is not empty.
pub fn secret_value(line: &str) -> Option<&str> {
    let l = line.trim_start_matches(lex::is_space);
    let v = lex::directive(l, "passwd").or_else(|| lex::directive(l, "secret"))?;
    let v = v.trim_end();
    (!v.is_empty()).then_some(v)
}

/// `line` with its `passwd=`/`secret=` value replaced by [`REDACTED`].
fn mask_secret(line: &str) -> String {
    match secret_value(line) {
        Some(v) => line.replacen(v, REDACTED, 1),
        None => line.to_owned(),
    }
}

impl Diagnostic {
    /// Cut the value of a `passwd=`/`secret=` line this diagnostic points at out of its
    /// texts: stock's messages quote the raw line (`Unknown command "passwd=…"`), and
    /// diagnostics reach the log and `--test`'s output.
    pub(crate) fn redact_secret(&mut self, text: &str) {
        let Some(line) = self
            .span
            .line
            .checked_sub(1)
            .and_then(|i| text.lines().nth(i))
        else {
            return;
        };
        let Some(v) = secret_value(line) else { return };
        for t in [
            Some(&mut self.message),
            self.label.as_mut(),
            self.help.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if t.contains(v) {
                *t = t.replace(v, REDACTED);
            }
        }
    }
}

/// Tabs shown as four spaces so the caret lines up.
fn visible(s: &str) -> String {
    s.replace('\t', "    ")
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {}",
            self.span.line,
            self.message.lines().next().unwrap_or("")
        )
    }
}

/// A configuration that cannot be used: the first error, as stock stops at the first one,
/// and the warnings given before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {error}")]
pub struct ConfigError {
    pub path: PathBuf,
    /// Boxed: errors travel through `Result`s on hot paths and stay small there.
    pub error: Box<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}
