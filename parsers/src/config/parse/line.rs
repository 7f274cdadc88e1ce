//! Lines as stock ldirectord reads them: physical lines with their numbers and offsets,
//! block lines after stock's preprocessing (comment stripped, TABs expanded), and
//! [`At`], where a directive sits, which turns a value back into a span of the raw file.

use std::borrow::Cow;

use crate::config::lex;
use crate::config::model::Span;

/// One physical line: its number, the text without the `\n`, whether it had one, and its
/// byte offset in the file.
#[derive(Clone, Copy)]
pub(super) struct Line<'a> {
    pub(super) number: usize,
    pub(super) text: &'a str,
    newline: bool,
    offset: usize,
}

impl<'a> Line<'a> {
    /// A span over `len` bytes at byte `at` of the line's text.
    pub(super) fn span(&self, at: usize, len: usize) -> Span {
        let at = at.min(self.text.len());
        let prefix = &self.text[..at];
        let column = if prefix.is_ascii() {
            at
        } else {
            prefix.chars().count()
        } + 1;
        Span {
            line: self.number,
            column,
            offset: self.offset + at,
            len,
        }
    }
    pub(super) fn whole(&self) -> Span {
        self.span(0, self.text.trim_end().len())
    }
    /// The raw line as Perl holds it, with its newline.
    pub(super) fn raw(&self) -> String {
        if self.newline {
            format!("{}\n", self.text)
        } else {
            self.text.to_owned()
        }
    }
}

pub(super) fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut offset = 0;
    let mut number = 0;
    std::iter::from_fn(move || {
        if offset >= text.len() {
            return None;
        }
        number += 1;
        let rest = &text[offset..];
        let (body, newline) = match rest.find('\n') {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        let line = Line {
            number,
            text: body,
            newline,
            offset,
        };
        offset += body.len() + usize::from(newline);
        Some(line)
    })
}

/// A block line after stock's preprocessing: comment stripped, tabs expanded.
pub(super) struct BlockLine<'a> {
    pub(super) line: Line<'a>,
    /// The directive body after stock's preprocessing (`s/#.*//; s/\t/    /g`, then
    /// `^ {4,}(.+)`). Borrowed from the raw line when no TAB follows the indentation,
    /// which is the common case and needs no copy.
    body: Cow<'a, str>,
    /// When `body` is owned (TABs inside the body): the whole expanded line and the
    /// body's offset in it, to map spans back to raw columns.
    expanded_at: usize,
}

impl<'a> BlockLine<'a> {
    /// Stock's preprocessing of a block line; `None` when the line ends the block.
    pub(super) fn new(line: Line<'a>) -> Option<BlockLine<'a>> {
        let stripped = match line.text.find('#') {
            Some(i) => &line.text[..i],
            None => line.text,
        };
        let indent_bytes = stripped
            .bytes()
            .take_while(|&c| c == b' ' || c == b'\t')
            .count();
        let rest = &stripped[indent_bytes..];
        if !rest.contains('\t') {
            let width: usize = stripped.as_bytes()[..indent_bytes]
                .iter()
                .map(|&c| if c == b'\t' { 4 } else { 1 })
                .sum();
            let body = if width >= 4 && !rest.is_empty() {
                Cow::Borrowed(rest)
            } else if width >= 5 {
                // Perl backtracks: five or more spaces alone leave one space as the body.
                Cow::Borrowed(" ")
            } else {
                return None;
            };
            return Some(BlockLine {
                line,
                body,
                expanded_at: usize::MAX,
            });
        }
        let expanded = stripped.replace('\t', "    ");
        let at = lex::block_body(&expanded)?;
        Some(BlockLine {
            line,
            body: Cow::Owned(expanded[at..].to_owned()),
            expanded_at: at,
        })
    }

    pub(super) fn rcmd(&self) -> &str {
        &self.body
    }

    /// Map an offset in the expanded line back to the raw line (a TAB was four columns).
    fn raw_offset(&self, expanded_at: usize) -> usize {
        let mut col = 0;
        for (i, &c) in self.line.text.as_bytes().iter().enumerate() {
            if col >= expanded_at {
                return i;
            }
            col += if c == b'\t' { 4 } else { 1 };
        }
        self.line.text.len()
    }

    /// A span over a value that is a subslice of `rcmd()`.
    pub(super) fn span_of(&self, value: &str) -> Span {
        let at = (value.as_ptr() as usize)
            .saturating_sub(self.body.as_ptr() as usize)
            .min(self.body.len());
        let (start, end) = match &self.body {
            Cow::Borrowed(b)
                if b.as_ptr() as usize >= self.line.text.as_ptr() as usize
                    && (b.as_ptr() as usize)
                        < self.line.text.as_ptr() as usize + self.line.text.len().max(1) =>
            {
                let base = b.as_ptr() as usize - self.line.text.as_ptr() as usize;
                (base + at, base + at + value.len())
            }
            Cow::Borrowed(_) => {
                // The lone-space body: point at the end of the indentation.
                let n = self.line.text.len();
                (n.saturating_sub(1), n)
            }
            Cow::Owned(_) => {
                let start = self.raw_offset(self.expanded_at + at);
                (
                    start,
                    self.raw_offset(self.expanded_at + at + value.len())
                        .max(start),
                )
            }
        };
        self.line.span(start, (end - start).max(1))
    }

    pub(super) fn directive_span(&self) -> Span {
        self.span_of(self.rcmd().trim_end())
    }
}

/// Where a directive sits (a global line or a block line), and its name. Values handed to
/// a directive are subslices of the line, so a value alone gives its span.
pub(super) struct At<'l, 'a> {
    /// The directive's name, for the messages that name it.
    pub(super) name: &'static str,
    line: Place<'l, 'a>,
}

enum Place<'l, 'a> {
    Global(Line<'a>),
    Block(&'l BlockLine<'a>),
}

impl<'l, 'a> At<'l, 'a> {
    pub(super) fn global(name: &'static str, line: Line<'a>) -> Self {
        At {
            name,
            line: Place::Global(line),
        }
    }

    pub(super) fn block(name: &'static str, line: &'l BlockLine<'a>) -> Self {
        At {
            name,
            line: Place::Block(line),
        }
    }

    /// The span of `value`, a subslice of the line.
    pub(super) fn value(&self, value: &str) -> Span {
        match &self.line {
            Place::Global(line) => {
                let at = (value.as_ptr() as usize).saturating_sub(line.text.as_ptr() as usize);
                line.span(at, value.trim_end().len().max(1))
            }
            Place::Block(bl) => bl.span_of(value),
        }
    }

    /// The span of the whole directive.
    pub(super) fn whole(&self) -> Span {
        match &self.line {
            Place::Global(line) => line.whole(),
            Place::Block(bl) => bl.directive_span(),
        }
    }
}
