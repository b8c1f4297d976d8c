//! Tokenizer for Pebble templates: splits a template into text and `{{ }}` / `{% %}` / `{# #}`
//! blocks, and the inside of each block into tokens.
//!
//! Blocks are found by lexing their contents, not by searching for the closing delimiter: a
//! `}}` or `%}` inside a string literal, or a `}` closing a map literal, never ends a block.
//! Double-quoted strings may hold `#{ … }` interpolations, lexed recursively.

use super::limits::MAX_NESTING;

/// A lexing failure at a byte offset of the template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LexError {
    pub message: String,
    pub offset: usize,
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, LexError> {
    Err(LexError {
        message: message.into(),
        offset,
    })
}

/// One token inside a block; `start..end` are byte offsets in the whole template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Int(i64),
    /// A float literal, kept as written (`1.5`) so it is emitted unchanged.
    Float(String),
    Str(Vec<StrPart>),
    Punct(&'static str),
}

/// A piece of a string literal: plain text, or a `#{ … }` interpolation (double quotes only).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StrPart {
    Lit(String),
    Interp {
        tokens: Vec<Token>,
        start: usize,
        end: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    /// `{{ … }}`
    Print,
    /// `{% … %}`
    Tag,
}

/// A `{{ }}` or `{% %}` block: `start..end` covers the delimiters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Block {
    pub kind: BlockKind,
    pub start: usize,
    pub end: usize,
    pub trim_left: bool,
    pub trim_right: bool,
    pub tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    /// Literal text, `start..end` in the template.
    Text {
        start: usize,
        end: usize,
    },
    Block(Block),
    /// `{# … #}`: dropped from the output, but its whitespace control is kept.
    Comment {
        start: usize,
        end: usize,
        trim_left: bool,
        trim_right: bool,
    },
    /// `{% raw %}…{% endraw %}` (or `verbatim`): `body` is copied unchanged.
    Raw {
        start: usize,
        end: usize,
        body_start: usize,
        body_end: usize,
        open: Block,
        close_trim: (bool, bool),
    },
}

/// Operators and punctuation, longest first so `???` wins over `??` and `?`.
const PUNCTS: &[&str] = &[
    "???", "??", "==", "!=", "<=", ">=", "..", "?", ":", "<", ">", "+", "-", "*", "/", "%", "~", "|", ".", ",", "=",
    "(", ")", "[", "]", "{", "}",
];

/// What ends the token stream being lexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    Print,
    Tag,
    /// The `}` closing a `#{` interpolation.
    Interp,
}

/// Splits `src` into segments. Never panics; every malformed input is a `LexError`.
pub(crate) fn scan(src: &str) -> Result<Vec<Segment>, LexError> {
    let bytes = src.as_bytes();
    let mut segments = Vec::new();
    let mut pos = 0;
    let mut text_start = 0;
    while pos + 1 < bytes.len() {
        if bytes[pos] != b'{' || !matches!(bytes[pos + 1], b'{' | b'%' | b'#') {
            pos += 1;
            continue;
        }
        if text_start < pos {
            segments.push(Segment::Text {
                start: text_start,
                end: pos,
            });
        }
        let opener = bytes[pos + 1];
        let trim_left = bytes.get(pos + 2) == Some(&b'-');
        let inner = pos + 2 + usize::from(trim_left);
        match opener {
            b'#' => {
                let Some(rel) = src[inner..].find("#}") else {
                    return fail(pos, "comment `{#` is never closed with `#}`");
                };
                let close = inner + rel;
                let trim_right = close > inner && bytes[close - 1] == b'-';
                segments.push(Segment::Comment {
                    start: pos,
                    end: close + 2,
                    trim_left,
                    trim_right,
                });
                pos = close + 2;
            }
            _ => {
                let (kind, term) = if opener == b'{' {
                    (BlockKind::Print, Term::Print)
                } else {
                    (BlockKind::Tag, Term::Tag)
                };
                let (tokens, end, trim_right) = lex_tokens(src, inner, term, 0, pos)?;
                let block = Block {
                    kind,
                    start: pos,
                    end,
                    trim_left,
                    trim_right,
                    tokens,
                };
                if let Some(word) = raw_opener(&block) {
                    let (body_end, close_end, close_trim) = find_raw_end(src, end, word, pos)?;
                    segments.push(Segment::Raw {
                        start: pos,
                        end: close_end,
                        body_start: end,
                        body_end,
                        open: block,
                        close_trim,
                    });
                    pos = close_end;
                } else {
                    segments.push(Segment::Block(block));
                    pos = end;
                }
            }
        }
        text_start = pos;
    }
    if text_start < bytes.len() {
        segments.push(Segment::Text {
            start: text_start,
            end: bytes.len(),
        });
    }
    Ok(segments)
}

/// `raw` or `verbatim` when the tag is exactly `{% raw %}` / `{% verbatim %}`.
fn raw_opener(block: &Block) -> Option<&'static str> {
    if block.kind != BlockKind::Tag || block.tokens.len() != 1 {
        return None;
    }
    match &block.tokens[0].kind {
        Tok::Ident(w) if w == "raw" => Some("raw"),
        Tok::Ident(w) if w == "verbatim" => Some("verbatim"),
        _ => None,
    }
}

/// Finds `{% endraw %}` (or `endverbatim`) after `from`: returns (body end, tag end, trim markers).
fn find_raw_end(
    src: &str,
    from: usize,
    word: &str,
    opened_at: usize,
) -> Result<(usize, usize, (bool, bool)), LexError> {
    let end_word = format!("end{word}");
    let mut search = from;
    while let Some(rel) = src[search..].find("{%") {
        let tag_start = search + rel;
        let mut i = tag_start + 2;
        let trim_left = src[i..].starts_with('-');
        if trim_left {
            i += 1;
        }
        let after_ws = i + src[i..].len() - src[i..].trim_start().len();
        if src[after_ws..].starts_with(end_word.as_str()) {
            let mut j = after_ws + end_word.len();
            j += src[j..].len() - src[j..].trim_start().len();
            let trim_right = src[j..].starts_with("-%}");
            if trim_right {
                j += 1;
            }
            if src[j..].starts_with("%}") {
                return Ok((tag_start, j + 2, (trim_left, trim_right)));
            }
        }
        search = tag_start + 2;
    }
    fail(
        opened_at,
        format!("`{{% {word} %}}` is never closed with `{{% {end_word} %}}`"),
    )
}

/// Lexes tokens from `pos` until the terminator at bracket depth 0.
/// Returns the tokens, the offset just after the terminator, and whether it had a `-` trim marker.
fn lex_tokens(
    src: &str,
    mut pos: usize,
    term: Term,
    nesting: usize,
    opened_at: usize,
) -> Result<(Vec<Token>, usize, bool), LexError> {
    if nesting > MAX_NESTING {
        return fail(
            pos,
            format!("string interpolations nested more than {MAX_NESTING} deep"),
        );
    }
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut brackets: Vec<(u8, usize)> = Vec::new();
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if pos >= bytes.len() {
            if let Some(&(open, at)) = brackets.last() {
                return fail(at, format!("`{}` is never closed", open as char));
            }
            return fail(
                opened_at,
                match term {
                    Term::Print => "`{{` is never closed with `}}`",
                    Term::Tag => "`{%` is never closed with `%}`",
                    Term::Interp => "`#{` is never closed with `}`",
                },
            );
        }
        let rest = &src[pos..];
        if brackets.is_empty() {
            let closing = match term {
                Term::Print => close_marker(rest, "}}"),
                Term::Tag => close_marker(rest, "%}"),
                Term::Interp => rest.starts_with('}').then_some((1, false)),
            };
            if let Some((len, trim)) = closing {
                return Ok((tokens, pos + len, trim));
            }
        }
        let start = pos;
        let c = bytes[pos];
        let kind = if c == b'\'' || c == b'"' {
            let (parts, end) = lex_string(src, pos, nesting)?;
            pos = end;
            Tok::Str(parts)
        } else if c.is_ascii_digit() {
            let (tok, end) = lex_number(src, pos)?;
            pos = end;
            tok
        } else if let Some(ch) = rest.chars().next().filter(|ch| ch.is_alphabetic() || *ch == '_') {
            let mut end = pos + ch.len_utf8();
            for ch in src[end..].chars() {
                if ch.is_alphanumeric() || ch == '_' {
                    end += ch.len_utf8();
                } else {
                    break;
                }
            }
            let word = src[pos..end].to_string();
            pos = end;
            Tok::Ident(word)
        } else if let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            match *p {
                "(" | "[" | "{" => {
                    brackets.push((c, pos));
                    if brackets.len() > MAX_NESTING {
                        return fail(pos, format!("brackets nested more than {MAX_NESTING} deep"));
                    }
                }
                ")" | "]" | "}" => {
                    let want = match c {
                        b')' => b'(',
                        b']' => b'[',
                        _ => b'{',
                    };
                    match brackets.pop() {
                        Some((open, _)) if open == want => {}
                        Some((open, at)) => {
                            return fail(
                                pos,
                                format!(
                                    "`{}` does not match `{}` opened at offset {at}",
                                    c as char, open as char
                                ),
                            );
                        }
                        // A stray closer: left for the parser to report in context.
                        None => {}
                    }
                }
                _ => {}
            }
            pos += p.len();
            Tok::Punct(p)
        } else {
            let ch = rest.chars().next().unwrap_or('?');
            return fail(pos, format!("unexpected character `{ch}`"));
        };
        tokens.push(Token { kind, start, end: pos });
    }
}

/// `Some((length, trim))` when `rest` starts with the closing delimiter, optionally preceded by `-`.
fn close_marker(rest: &str, delim: &str) -> Option<(usize, bool)> {
    if rest.starts_with(delim) {
        Some((delim.len(), false))
    } else if rest.starts_with('-') && rest[1..].starts_with(delim) {
        Some((delim.len() + 1, true))
    } else {
        None
    }
}

fn lex_number(src: &str, start: usize) -> Result<(Tok, usize), LexError> {
    let bytes = src.as_bytes();
    let mut end = start;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    // `1.5` is a float, `1..5` is a range and `list.0.name` keeps the dot as an attribute access.
    if end + 1 < bytes.len() && bytes[end] == b'.' && bytes[end + 1].is_ascii_digit() {
        let mut frac = end + 1;
        while frac < bytes.len() && bytes[frac].is_ascii_digit() {
            frac += 1;
        }
        return Ok((Tok::Float(src[start..frac].to_string()), frac));
    }
    match src[start..end].parse::<i64>() {
        Ok(n) => Ok((Tok::Int(n), end)),
        Err(_) => fail(start, format!("number `{}` is too large", &src[start..end])),
    }
}

/// Lexes a quoted string starting at `start` (on the quote). Returns its parts and the offset after it.
fn lex_string(src: &str, start: usize, nesting: usize) -> Result<(Vec<StrPart>, usize), LexError> {
    let bytes = src.as_bytes();
    let quote = bytes[start];
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut pos = start + 1;
    loop {
        let Some(ch) = src[pos..].chars().next() else {
            return fail(start, format!("string starting with {} is never closed", quote as char));
        };
        if ch as u32 == u32::from(quote) {
            pos += 1;
            break;
        }
        if ch == '\\' {
            let Some(next) = src[pos + 1..].chars().next() else {
                return fail(start, format!("string starting with {} is never closed", quote as char));
            };
            match next {
                '\\' => lit.push('\\'),
                '\'' => lit.push('\''),
                '"' => lit.push('"'),
                '#' => lit.push('#'),
                'n' => lit.push('\n'),
                't' => lit.push('\t'),
                'r' => lit.push('\r'),
                // Unknown escapes keep their backslash: regex patterns such as '\d+' stay intact.
                other => {
                    lit.push('\\');
                    lit.push(other);
                }
            }
            pos += 1 + next.len_utf8();
            continue;
        }
        if quote == b'"' && ch == '#' && src[pos + 1..].starts_with('{') {
            if !lit.is_empty() {
                parts.push(StrPart::Lit(std::mem::take(&mut lit)));
            }
            let interp_start = pos;
            let (tokens, end, _) = lex_tokens(src, pos + 2, Term::Interp, nesting + 1, interp_start)?;
            parts.push(StrPart::Interp {
                tokens,
                start: interp_start,
                end,
            });
            pos = end;
            continue;
        }
        lit.push(ch);
        pos += ch.len_utf8();
    }
    if !lit.is_empty() || parts.is_empty() {
        parts.push(StrPart::Lit(lit));
    }
    Ok((parts, pos))
}

/// 1-based line and column (in characters) of byte `offset` in `src`.
pub(crate) fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}
