//! A linear pre-scan that bounds how deep a YAML source nests, before any YAML parser sees it.
//!
//! The YAML parser spends time quadratic in the nesting depth (issue 14: 20,000 nested `[` cost
//! a second of daemon CPU, 200,000 more than twenty), so a source nested deeper than
//! [`MAX_DEPTH`] is refused here, in one pass, at the line and column where the limit is crossed.
//!
//! The depth at a point is the number of open block collections (a mapping or a sequence per
//! indentation level, compact ones such as `- - x` included, and a sequence written at its key's
//! indentation counted apart from the mapping) plus the number of open flow collections (`[`,
//! `{`). Brackets inside quoted scalars, comments, block scalars (`|`, `>`, with the parser's own
//! rule for where their content ends) and plain scalars are text and are not counted. This is not
//! a YAML parser: it follows the parser (libyaml's rules, as serde_yaml uses them) where text ends
//! and structure starts; on a source that is not YAML it rather counts bytes after a complete node
//! as structure, and the parser reports the real error afterwards.

use std::fmt;

/// The deepest nesting a flow source may have. A flow's own structure stays far below it: the
/// document is one level, each list of tasks and each task two more, so even tasks nested twenty
/// deep in `If`/`Parallel` with a JSON payload of a few levels fit. serde_yaml gives up at 128.
pub const MAX_DEPTH: usize = 64;

/// Where a source crossed the depth limit (1-based, columns in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    pub line: u32,
    pub column: u32,
    pub limit: usize,
}

impl fmt::Display for TooDeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the YAML nests deeper than {} levels; flows never need that many",
            self.limit
        )
    }
}

/// Refuses a source that nests deeper than [`MAX_DEPTH`].
pub fn check(source: &str) -> Result<(), TooDeep> {
    check_limit(source, MAX_DEPTH)
}

/// Refuses a source that nests deeper than `limit`.
pub fn check_limit(source: &str, limit: usize) -> Result<(), TooDeep> {
    let mut s = Scanner {
        src: source.as_bytes(),
        pos: 0,
        line_start: 0,
        limit,
        block: Vec::new(),
        flow: 0,
        plain_above: None,
    };
    if source.starts_with('\u{feff}') {
        s.pos = 3;
        s.line_start = 3;
    }
    s.scan().map_err(|offset| {
        let before = &source[..offset];
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        TooDeep {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            limit,
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
}

/// Scans bytes: every YAML indicator is ASCII, and no byte of a multi-byte UTF-8 character is.
struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
    line_start: usize,
    limit: usize,
    /// Open block collections, innermost last: the column they are indented at, and their kind.
    block: Vec<(usize, Kind)>,
    /// Open flow collections.
    flow: usize,
    /// A plain scalar ended a line: following lines indented deeper than this (the innermost block
    /// collection's column, -1 at the top) continue it, as text.
    plain_above: Option<isize>,
}

fn blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// After an indicator: a blank, the end of the line, or the end of input (read as 0).
fn blank_or_eol(b: u8) -> bool {
    blank(b) || matches!(b, b'\n' | 0)
}

fn flow_indicator(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

/// The error is the offset where the limit was crossed.
type Scan = Result<(), usize>;

impl Scanner<'_> {
    fn at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    fn peek(&self) -> u8 {
        self.at(self.pos)
    }

    fn eol_at(&self, i: usize) -> bool {
        i >= self.src.len() || self.src[i] == b'\n'
    }

    fn at_eol(&self) -> bool {
        self.eol_at(self.pos)
    }

    fn col(&self) -> usize {
        self.pos - self.line_start
    }

    fn depth(&self) -> usize {
        self.block.len() + self.flow
    }

    /// The column of the innermost block collection, -1 at the top.
    fn block_indent(&self) -> isize {
        self.block.last().map(|&(c, _)| c as isize).unwrap_or(-1)
    }

    fn skip_blanks(&mut self) {
        while blank(self.peek()) {
            self.pos += 1;
        }
    }

    fn skip_to_eol(&mut self) {
        while !self.at_eol() {
            self.pos += 1;
        }
    }

    /// How many spaces there are from `pos`.
    fn spaces(&self) -> usize {
        self.src[self.pos..].iter().take_while(|&&b| b == b' ').count()
    }

    fn scan(&mut self) -> Scan {
        while self.pos < self.src.len() {
            self.line_start = self.pos;
            let fresh_line = self.line()?;
            if !fresh_line {
                self.skip_to_eol();
                if self.peek() == b'\n' {
                    self.pos += 1;
                }
            }
        }
        Ok(())
    }

    /// One line of block context, from its start. Returns true when it stopped at the start of a
    /// line not yet scanned (after a block scalar), false when the rest of its last line is done.
    fn line(&mut self) -> Result<bool, usize> {
        let indent = self.spaces();
        self.pos += indent;
        if indent == 0 && self.document_marker() {
            self.block.clear();
            self.plain_above = None;
            self.pos += 3;
            return self.rest_of_line(false, None);
        }
        if indent == 0 && self.peek() == b'%' {
            return Ok(false); // a directive
        }
        self.skip_blanks();
        if self.at_eol() {
            return Ok(false);
        }
        if self.peek() == b'#' {
            self.plain_above = None;
            return Ok(false);
        }
        if let Some(above) = self.plain_above {
            if indent as isize > above {
                // More of a multi-line plain scalar: text up to `: ` or ` #`.
                if self.plain() {
                    return Ok(false);
                }
                // `: ` in it: not YAML; what follows still counts.
                self.plain_above = None;
                self.pos += 1;
                return self.rest_of_line(false, Some(indent));
            }
            self.plain_above = None;
        }
        while self.block.last().is_some_and(|&(c, _)| c > indent) {
            self.block.pop();
        }
        self.rest_of_line(true, None)
    }

    fn document_marker(&self) -> bool {
        let rest = &self.src[self.pos..];
        (rest.starts_with(b"---") || rest.starts_with(b"...")) && blank_or_eol(self.at(self.pos + 3))
    }

    /// Opens (or continues) a block collection of `kind` indented at `col`.
    fn open_block(&mut self, col: usize, kind: Kind) -> Scan {
        match self.block.last().copied() {
            Some((c, k)) if c == col && k == kind => return Ok(()),
            // `key:` then `- item` at the key's own indentation: a sequence inside the mapping.
            Some((c, Kind::Map)) if c == col => {}
            // The next key of a mapping whose value was such a sequence.
            Some((c, Kind::Seq)) if c == col => {
                self.block.pop();
                if self.block.last() == Some(&(col, Kind::Map)) {
                    return Ok(());
                }
            }
            _ => {}
        }
        self.block.push((col, kind));
        if self.depth() > self.limit {
            // Where the collection starts: its `-`, `?` or first key.
            return Err((self.line_start + col).min(self.pos));
        }
        Ok(())
    }

    /// The rest of a line in block context, from a node's start or blanks before it.
    /// `allow_block`: a block collection may start here (at a line's start, after `- `, `? `).
    /// `key_col`: a node ended here that, followed by `: `, is an implicit key at this column.
    /// Like [`Scanner::line`], returns whether it stopped at the start of a line not yet scanned.
    fn rest_of_line(&mut self, mut allow_block: bool, mut key_col: Option<usize>) -> Result<bool, usize> {
        loop {
            self.skip_blanks();
            if self.at_eol() {
                return Ok(false);
            }
            let b = self.peek();
            let here = self.col();
            let next = self.at(self.pos + 1);
            match b {
                b'#' if self.pos == self.line_start || blank(self.at(self.pos - 1)) => return Ok(false),
                b':' if blank_or_eol(next) => {
                    if allow_block {
                        // After an implicit key, its mapping; alone, the value of a `? ` key.
                        self.open_block(key_col.unwrap_or(here), Kind::Map)?;
                    }
                    allow_block = allow_block && key_col.is_none();
                    key_col = None;
                    self.pos += 1;
                }
                b'-' | b'?' if allow_block && key_col.is_none() && blank_or_eol(next) => {
                    self.open_block(here, if b == b'-' { Kind::Seq } else { Kind::Map })?;
                    self.pos += 1;
                }
                b'&' if key_col.is_none() => {
                    self.pos += 1;
                    while matches!(self.peek(), b'-' | b'_') || self.peek().is_ascii_alphanumeric() {
                        self.pos += 1;
                    }
                }
                b'!' if key_col.is_none() => {
                    while !blank_or_eol(self.peek()) {
                        self.pos += 1;
                    }
                }
                b'|' | b'>' if key_col.is_none() => {
                    self.block_scalar();
                    return Ok(true);
                }
                b'[' | b'{' => {
                    self.flow_collection()?;
                    key_col.get_or_insert(here);
                }
                b'\'' | b'"' if key_col.is_none() => {
                    self.quoted();
                    key_col = Some(here);
                }
                _ if key_col.is_none() => {
                    if self.plain() {
                        // The scalar ran to the end of the line: it may go on below.
                        self.plain_above = Some(self.block_indent());
                        return Ok(false);
                    }
                    key_col = Some(here);
                }
                // Anything after a complete node but `: ` or a comment is not YAML; look at it a
                // byte at a time so that brackets in it still count.
                _ => self.pos += 1,
            }
        }
    }

    /// A plain scalar in block context, up to `: `, ` #` or the end of the line (where it leaves
    /// `pos`); true when it reached the end of the line.
    fn plain(&mut self) -> bool {
        loop {
            if self.at_eol() {
                return true;
            }
            let b = self.peek();
            if b == b':' && blank_or_eol(self.at(self.pos + 1)) {
                return false;
            }
            if b == b'#' && blank(self.at(self.pos.wrapping_sub(1))) {
                self.skip_to_eol();
                return true;
            }
            self.pos += 1;
        }
    }

    /// A quoted scalar from its opening quote to past its closing one, across lines.
    fn quoted(&mut self) {
        let quote = self.peek();
        self.pos += 1;
        loop {
            match self.peek() {
                0 if self.pos >= self.src.len() => return,
                b'\n' => {
                    self.pos += 1;
                    self.line_start = self.pos;
                }
                b'\\' if quote == b'"' => {
                    self.pos += 1;
                    if !self.at_eol() {
                        self.pos += 1;
                    }
                }
                b if b == quote => {
                    self.pos += 1;
                    if quote == b'\'' && self.peek() == b'\'' {
                        self.pos += 1;
                    } else {
                        return;
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// A block scalar from its `|` or `>` to the start of the first line after its content, with
    /// the parser's rule: content is indented at the explicit indentation past the enclosing block
    /// collection's, else at least as deep as its first non-empty line (and deeper than the
    /// enclosing collection); an empty line never ends it.
    fn block_scalar(&mut self) {
        let parent = self.block_indent();
        self.pos += 1;
        let mut explicit = None;
        while let b @ (b'+' | b'-' | b'1'..=b'9') = self.peek() {
            if b.is_ascii_digit() {
                explicit = Some(usize::from(b - b'0'));
            }
            self.pos += 1;
        }
        let mut needed = explicit.map(|m| if parent >= 0 { parent as usize + m } else { m });
        let mut leading = 0;
        self.skip_to_eol();
        while self.peek() == b'\n' {
            self.pos += 1;
            self.line_start = self.pos;
            let indent = self.spaces();
            let after = self.at(self.pos + indent);
            if self.eol_at(self.pos + indent) || after == b'\r' && self.eol_at(self.pos + indent + 1) {
                // An empty line, whatever its spaces.
                if needed.is_none() {
                    leading = leading.max(indent);
                }
                self.pos += indent;
                self.skip_to_eol();
                continue;
            }
            let needed = *needed.get_or_insert(leading.max(indent).max((parent + 1).max(1) as usize));
            if indent < needed {
                return; // this line is not content: it is scanned as a line of its own
            }
            self.skip_to_eol();
        }
        // End of input.
    }

    /// A flow collection from its opening bracket to past its closing one, across lines.
    fn flow_collection(&mut self) -> Scan {
        // A node may start here (after `[`, `{`, `,`, `? `, `: `).
        let mut node_start = true;
        // The last node was quoted or a collection: a `:` right after it is a value indicator.
        let mut json_key = false;
        let mut after_blank = false;
        loop {
            let b = self.peek();
            let next = self.at(self.pos + 1);
            let was_blank = std::mem::replace(&mut after_blank, false);
            match b {
                0 if self.pos >= self.src.len() => return Ok(()),
                b'\n' => {
                    self.pos += 1;
                    self.line_start = self.pos;
                    after_blank = true;
                }
                b' ' | b'\t' | b'\r' => {
                    self.pos += 1;
                    after_blank = true;
                }
                b'#' if was_blank => self.skip_to_eol(),
                b'[' | b'{' => {
                    self.flow += 1;
                    if self.depth() > self.limit {
                        return Err(self.pos);
                    }
                    self.pos += 1;
                    (node_start, json_key) = (true, false);
                }
                b']' | b'}' => {
                    self.flow = self.flow.saturating_sub(1);
                    self.pos += 1;
                    if self.flow == 0 {
                        return Ok(());
                    }
                    (node_start, json_key) = (false, true);
                }
                b',' => {
                    self.pos += 1;
                    (node_start, json_key) = (true, false);
                }
                b':' if json_key || blank_or_eol(next) || flow_indicator(next) => {
                    self.pos += 1;
                    (node_start, json_key) = (true, false);
                }
                b'?' if node_start && blank_or_eol(next) => self.pos += 1,
                b'\'' | b'"' if node_start => {
                    self.quoted();
                    (node_start, json_key) = (false, true);
                }
                b'&' | b'!' if node_start => {
                    while !blank_or_eol(self.peek()) && !flow_indicator(self.peek()) {
                        self.pos += 1;
                    }
                }
                _ => {
                    // Plain text.
                    self.pos += 1;
                    (node_start, json_key) = (false, false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(source: &str) -> Option<(u32, u32)> {
        check(source).err().map(|e| (e.line, e.column))
    }

    /// `levels` nested mappings by indentation, a scalar at the bottom.
    fn nested_maps(levels: usize) -> String {
        (0..levels)
            .map(|i| format!("{}k{i}:{}\n", "  ".repeat(i), if i + 1 == levels { " x" } else { "" }))
            .collect()
    }

    #[test]
    fn flow_nesting_is_refused_exactly_past_the_limit() {
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(at(&ok), None);
        let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(at(&deep), Some((1, 65)));
        assert_eq!(at(&"{a: ".repeat(65)), Some((1, 4 * 64 + 1)));
        // Under a mapping, the mapping is a level too.
        let under = format!("a:\n  b: {}", "[".repeat(63));
        assert_eq!(at(&under), Some((2, 6 + 62)));
        let under_ok = format!("a:\n  b: {}", "[".repeat(62));
        assert_eq!(at(&under_ok), None);
        assert_eq!(
            check(&deep).unwrap_err().to_string(),
            "the YAML nests deeper than 64 levels; flows never need that many"
        );
    }

    #[test]
    fn flow_nesting_across_lines_reports_the_line() {
        let deep = "x: [\n".to_string() + &"  [\n".repeat(70);
        assert_eq!(at(&deep), Some((64, 3)));
    }

    #[test]
    fn block_nesting_by_indentation_is_refused_exactly_past_the_limit() {
        assert_eq!(at(&nested_maps(64)), None);
        assert_eq!(at(&nested_maps(65)), Some((65, 129)));
    }

    #[test]
    fn compact_block_nesting_on_one_line_counts_every_level() {
        assert_eq!(at(&format!("{}x", "- ".repeat(64))), None);
        assert_eq!(at(&format!("{}x", "- ".repeat(65))), Some((1, 129)));
        assert_eq!(at(&"- ".repeat(200_000)), Some((1, 129)));
        assert_eq!(at(&format!("{}x", "? ".repeat(65))), Some((1, 129)));
        // `- k: - k: …` is not YAML, but `- k:` then deeper lines is: a sequence and a mapping each.
        let seq_of_maps: String = (0..40).map(|i| format!("{}- k:\n", "  ".repeat(2 * i))).collect();
        assert_eq!(at(&seq_of_maps), Some((33, 129)));
    }

    #[test]
    fn a_sequence_at_its_keys_indentation_is_a_level_of_its_own() {
        // k0:\n- k1:\n  - k2: … : a mapping and a sequence per two columns.
        let src = |levels: usize| -> String {
            (0..levels)
                .map(|i| match i {
                    0 => "k0:\n".to_string(),
                    _ => format!("{}- k{i}:\n", "  ".repeat(i - 1)),
                })
                .collect()
        };
        assert_eq!(at(&src(32)), None);
        assert_eq!(at(&src(33)), Some((33, 65)));
        // Siblings after such a sequence are not deeper.
        let flat = "a:\n- 1\n- 2\nb:\n- 3\nc: 4\n".repeat(200);
        assert_eq!(at(&flat), None);
    }

    #[test]
    fn brackets_in_text_are_not_counted() {
        let b = "[{".repeat(100);
        let sources = [
            format!("message: \"{b}\"\n"),
            format!("message: '{b} it''s'\n"),
            format!("message: \"{b}\\\"{b}\"\n"),
            format!("# {b}\nid: x\n"),
            format!("id: x # {b}\n"),
            format!("message: see {b} and {b}\n"),
            format!("message: |\n  {b}\n\n  {b}\nnext: 1\n"),
            format!("- script: >-\n    {b}\n\n      {b}\n    # {b}\n- b\n"),
            format!("message: a long line\n  continued {b}\n  and {b}\nnext: 1\n"),
            format!("list: [\"{b}\", '{b}', it's, a#b, # {b}\n  b]\n"),
            format!("message: \"first line\n  {b} second line\"\n"),
            format!("map: {{\"a\":\"{b}\", 'b': x}}\n"),
            format!("url: http://x/{b}\n"),
        ];
        for s in &sources {
            assert_eq!(at(s), None, "{s}");
        }
    }

    #[test]
    fn text_that_the_parser_would_read_as_nesting_is_counted() {
        let deep = "[".repeat(100);
        let sources = [
            // An apostrophe inside a plain scalar does not open a quote.
            format!("x: [it's, {deep}"),
            format!("x: [a:'b, {deep}"),
            // Past an explicit indentation, a less indented line ends a block scalar.
            format!("x: |9\n {deep}\n"),
            // Past the first line's indentation, a less indented line ends a block scalar.
            format!("x:\n  y: |\n        deep text\n    {deep}\n"),
            // Text after a complete node is not YAML, but brackets in it still count.
            format!("x: 'a' {deep}\n"),
            format!("x: &a{deep}\n"),
            format!("--- {deep}\n"),
            format!("'key': {deep}\n"),
            // A comment line ends a multi-line plain scalar.
            format!("x:\n  y: a\n# c\n   {deep}\n"),
        ];
        for s in &sources {
            assert!(at(s).is_some(), "{s}");
        }
    }

    #[test]
    fn every_example_flow_passes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows");
        let mut dirs = vec![root];
        let mut seen = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    let source = std::fs::read_to_string(&path).unwrap();
                    assert_eq!(check(&source), Ok(()), "{}", path.display());
                    // Deep enough for the real thing with a wide margin.
                    assert_eq!(check_limit(&source, 16), Ok(()), "{}", path.display());
                    seen += 1;
                }
            }
        }
        assert!(seen > 5, "{seen} flows");
    }
}
