//! The shape of the directive table: a row names a directive, says how its value is taken
//! from the line ([`Value`]) and holds the function that applies it. The rows themselves
//! are [`GLOBAL`](super::global::GLOBAL) and [`VIRTUAL`](super::block::VIRTUAL);
//! [`super::directives`] dispatches through them.

use crate::config::lex;

use super::value::{directive_name, quoted_or_all};

/// Where a directive may stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A global line: unindented, outside virtual blocks.
    Global,
    /// A line of a `virtual=`/`virtual6=` block: indented by a TAB or 4+ spaces.
    Virtual,
}

/// How a directive's value is taken from its line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Value {
    /// `^NAME\s*=\s*(.*)`.
    Plain,
    /// `^NAME\s*=\s*"(.*)"`: without the quotes the line is unknown, as in stock.
    Quoted,
    /// `^NAME\s*=\s*"(.*)"` or else `^NAME\s*=\s*(.*)`.
    QuotedOrAll,
    /// [`Value::Plain`] without trailing whitespace.
    Trimmed,
    /// The whole line, for a directive that reads it itself; it takes every line that
    /// starts with its name (`supervised` may stand bare).
    WholeLine,
}

/// A directive in one scope, as documentation sees it. A directive allowed in both scopes
/// has one in each: its checks, messages and defaults differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directive {
    name: &'static str,
    scope: Scope,
    extension: bool,
    deprecated: bool,
    default: Option<&'static str>,
}

impl Directive {
    /// The name before `=`.
    pub fn name(&self) -> &'static str {
        self.name
    }
    pub fn scope(&self) -> Scope {
        self.scope
    }
    /// An ldirectord-rs extension: stock ldirectord does not know it.
    pub fn is_extension(&self) -> bool {
        self.extension
    }
    /// Refused with a message naming its replacement (`connecttimeout`, `timeout`); not
    /// listed as valid.
    pub fn is_deprecated(&self) -> bool {
        self.deprecated
    }
    /// The value it has when not given, as written in the file, where that is a fixed
    /// value (`None`: unset, or in a block, the global directive's value).
    pub fn default_value(&self) -> Option<&'static str> {
        self.default
    }
}

/// One row of a scope's table; `F` is the scope's kind of function.
pub(super) struct Row<F> {
    pub(super) directive: Directive,
    pub(super) value: Value,
    /// `None` for `virtual=`/`virtual6=`, which the line loop reads itself.
    pub(super) apply: Option<F>,
}

impl<F> Row<F> {
    pub(super) const fn new(
        scope: Scope,
        name: &'static str,
        value: Value,
        apply: Option<F>,
    ) -> Self {
        Row {
            directive: Directive {
                name,
                scope,
                extension: false,
                deprecated: false,
                default: None,
            },
            value,
            apply,
        }
    }
    /// Marks an ldirectord-rs extension (stock ldirectord rejects it).
    pub(super) const fn extension(mut self) -> Self {
        self.directive.extension = true;
        self
    }
    /// Marks a directive stock refuses with a message naming its replacement.
    pub(super) const fn deprecated(mut self) -> Self {
        self.directive.deprecated = true;
        self
    }
    /// The value it has when not given (for documentation).
    pub(super) const fn default(mut self, default: &'static str) -> Self {
        self.directive.default = Some(default);
        self
    }
    pub(super) fn name(&self) -> &'static str {
        self.directive.name
    }
}

/// The row named like the line's first word (its name and function) and the value, if
/// the line has the row's form.
pub(super) fn find<'t, F: Copy>(
    table: &[Row<F>],
    line: &'t str,
) -> Option<(&'static str, F, &'t str)> {
    // Every directive pattern is `^NAME\s*=`: only the one named like the line's first
    // word can match, so compare names before running a parser.
    let name = directive_name(line);
    let row = table.iter().find(|r| {
        r.name() == name || (r.value == Value::WholeLine && name.starts_with(r.name()))
    })?;
    let v = match row.value {
        Value::Plain => lex::directive(line, row.name()),
        Value::Quoted => lex::directive(line, row.name()).and_then(lex::quoted_greedy),
        Value::QuotedOrAll => lex::directive(line, row.name()).map(quoted_or_all),
        Value::Trimmed => lex::directive(line, row.name()).map(str::trim_end),
        Value::WholeLine => Some(line),
    }?;
    Some((row.name(), row.apply?, v))
}

/// `a, b, c (extensions: x, y)`: the directives a scope accepts, as the help lists them.
pub(super) fn listed<F>(table: &[Row<F>]) -> String {
    let names = |extension: bool| {
        table
            .iter()
            .map(|r| r.directive)
            .filter(|d| !d.deprecated && d.extension == extension)
            .map(|d| d.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!("{} (extensions: {})", names(false), names(true))
}

/// Whether `table` has `name` (`listed_only`: leaving out deprecated directives).
pub(super) fn has<F>(table: &[Row<F>], name: &str, listed_only: bool) -> bool {
    table
        .iter()
        .any(|r| r.name() == name && !(listed_only && r.directive.deprecated))
}
