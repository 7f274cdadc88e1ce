//! The `ldirectord.cf` reader: stock ldirectord's line loop (global lines, virtual blocks,
//! the "first non-block line is re-read as a global line" rule), its accept/reject
//! decisions and line numbers, with every value resolved into the typed model.
//!
//! Stock stops at the first error; so does this parser, and it reports that error at the
//! same line with the same message. Warnings are collected.
//!
//! The map, top down (each module uses only those listed after it):
//! - this file: the entry points and the line loop;
//! - `directives`: dispatch through the directive table, the unknown-directive errors,
//!   and [`directives()`], the table for documentation;
//! - `global`: the rows of the global directives (name, how the value is read, what it
//!   does);
//! - `block/`: the rows of the virtual-block directives and a block's raw settings
//!   (`mod.rs`); `finish.rs` resolves a complete block into a
//!   [`VirtualService`](crate::config::VirtualService) (and fallbacks for `global`);
//! - `table`: the shape of a row and the lookup by name;
//! - `value`, `sources`: reading values (stock's forms; dynamic real servers);
//! - `state`: the reader's state and its resolution services;
//! - `line`: physical lines, block lines after stock's preprocessing, spans.

mod block;
mod directives;
mod global;
mod line;
mod sources;
mod state;
mod table;
mod value;

use std::path::Path;

use crate::config::diag::{ConfigError, Diagnostic};
use crate::config::lex;
use crate::config::model::{Config, Family, Span};

use line::{BlockLine, Line, lines};
use state::{Parser, Res};

pub use directives::directives;
pub use state::ParseOptions;
pub use table::{Directive, Scope};

/// A parsed configuration and the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Read and parse `path`. An unreadable file is stock's `can not open file PATH`.
pub fn load(path: &Path) -> Result<Parsed, ConfigError> {
    load_with(path, &ParseOptions::default())
}

/// [`load`] with options.
pub fn load_with(path: &Path, opts: &ParseOptions<'_>) -> Result<Parsed, ConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let mut parsed = parse_with(&text, path, opts)?;
            if readable_by_others(path) {
                parsed.warnings.extend(exposed_secret(&text, path));
            }
            Ok(parsed)
        }
        Err(e) => Err(ConfigError {
            path: path.to_owned(),
            error: Box::new(
                Diagnostic::error(
                    Span::default(),
                    format!("can not open file {}", path.display()),
                )
                .help(e.to_string()),
            ),
            warnings: Vec::new(),
        }),
    }
}

/// Whether every user may read `path` (mode `o+r`).
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// The warning for a file every user can read that holds a `passwd=` or `secret=`
/// (checks' passwords, RADIUS secrets), naming the first such line. It has no span: the
/// excerpt under a spanned diagnostic would print the secret.
fn exposed_secret(text: &str, path: &Path) -> Option<Diagnostic> {
    text.lines().enumerate().find_map(|(i, line)| {
        let rest = line.trim_start();
        let name = ["passwd", "secret"].into_iter().find(|n| {
            rest.strip_prefix(n)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })?;
        Some(
            Diagnostic::warning(
                Span::default(),
                format!(
                    "{} is readable by every user and holds a secret ({name}= at line {})",
                    path.display(),
                    i + 1
                ),
            )
            .extension()
            .help(format!("chmod o-r {}", path.display())),
        )
    })
}

/// Parse configuration text that was read from `path`, with the system resolver.
pub fn parse_str(text: &str, path: &Path) -> Result<Parsed, ConfigError> {
    parse_with(text, path, &ParseOptions::default())
}

/// Parse configuration text with options.
pub fn parse_with(text: &str, path: &Path, opts: &ParseOptions<'_>) -> Result<Parsed, ConfigError> {
    let mut p = Parser::new(opts);
    let result = p.run(text);
    for w in &mut p.warnings {
        w.redact_secret(text);
    }
    match result {
        Ok(()) => {
            // Whole-file: the line may come after the blocks it applies to.
            for v in &mut p.virtuals {
                v.check.scriptuser.clone_from(&p.globals.scriptuser);
            }
            let config = Config {
                path: path.to_owned(),
                globals: p.globals,
                virtuals: p.virtuals,
            };
            Ok(Parsed {
                config,
                warnings: p.warnings,
            })
        }
        Err(mut error) => {
            error.redact_secret(text);
            Err(ConfigError {
                path: path.to_owned(),
                error: Box::new(error),
                warnings: p.warnings,
            })
        }
    }
}

impl Parser<'_, '_> {
    fn run(&mut self, text: &str) -> Res {
        let mut iter = lines(text);
        let mut pending: Option<Line<'_>> = None;
        while let Some(line) = pending.take().or_else(|| iter.next()) {
            if let Some((inet6, value)) = virtual_head(line.text) {
                pending = self.block(line, inet6, value, &mut iter)?;
                continue;
            }
            let t = line.text;
            if t.chars().all(lex::is_space) || t.trim_start_matches(lex::is_space).starts_with('#')
            {
                continue;
            }
            self.global(line)?;
        }
        self.finish_sync_daemon()
    }

    /// Read one virtual block starting at `head`. Returns the line that ended it (to be
    /// re-read as a global line), if any.
    fn block<'t>(
        &mut self,
        head: Line<'t>,
        inet6: bool,
        value: &'t str,
        iter: &mut impl Iterator<Item = Line<'t>>,
    ) -> Res<Option<Line<'t>>> {
        let family = if inet6 { Family::Inet6 } else { Family::Inet };
        let value_at = value.as_ptr() as usize - head.text.as_ptr() as usize;
        let value_span = head.span(value_at, value.trim_end().len().max(1));
        let mut b = self.block_head(head, family, value, value_span)?;
        let mut current = head.number;
        let mut ended_by = None;
        for line in iter.by_ref() {
            current = line.number;
            if line.text.trim_start_matches(lex::is_space).starts_with('#') {
                continue;
            }
            let Some(bl) = BlockLine::new(line) else {
                ended_by = Some(line);
                break;
            };
            self.block_line(&mut b, &bl)?;
        }
        // The line stock's `$line` points at when it checks for duplicates: the line that
        // ended the block, or the last line read.
        let end_line = Span {
            line: current,
            column: 1,
            offset: 0,
            len: 1,
        };
        self.finish_block(b, end_line)?;
        Ok(ended_by)
    }
}

/// `^virtual(6)?\s*=\s*(.*)`.
fn virtual_head(line: &str) -> Option<(bool, &str)> {
    if let Some(v) = lex::directive(line, "virtual6") {
        return Some((true, v));
    }
    lex::directive(line, "virtual").map(|v| (false, v))
}
