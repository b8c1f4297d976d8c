//! Maps document paths (`tasks[2].onResume[0].type`) to `line:column` in the flow source.
//!
//! serde_yaml drops positions, so the source is read a second time with yaml-rust2's event
//! parser, which marks every node. Keys are indexed separately from values so that a problem
//! about a property (`unknown property`, `invalid duration`) points at the key the user typed.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::path::{Path, Segment};

/// Line and column (1-based) of the node at `path`; the nearest existing ancestor when the node is absent.
pub fn locate(source: &str, path: &Path) -> (u32, u32) {
    PositionIndex::new(source).locate(path)
}

/// Keeps a position inside the file. YAML scanners read as if the file ended with a line break,
/// so a node or error at end of input may be reported on a line past the last one; it is moved
/// to the end of the last line.
pub fn within_source(source: &str, line: u32, column: u32) -> (u32, u32) {
    let normalized = source.replace("\r\n", "\n").replace('\r', "\n");
    let last = u32::try_from(normalized.split('\n').count()).unwrap_or(u32::MAX).max(1);
    if line > last {
        let width = normalized.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0);
        (last, u32::try_from(width).unwrap_or(u32::MAX).saturating_add(1))
    } else {
        (line.max(1), column.max(1))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    Mapping,
    Sequence,
    Scalar(TScalarStyle),
    Alias,
}

/// Positions of every node of the first YAML document of a source, built once and queried many times.
#[derive(Debug, Default)]
pub struct PositionIndex {
    /// Where the key of a mapping entry starts, by the entry's path.
    keys: HashMap<Path, (u32, u32)>,
    /// Where a node (value or sequence item) starts, by its path.
    nodes: HashMap<Path, ((u32, u32), NodeKind)>,
    /// The source, to map a position inside a scalar's text back to the file.
    source: String,
}

impl PositionIndex {
    /// Indexes `source`. A source yaml-rust2 cannot read entirely is indexed up to the error, so
    /// problems found before it still get a precise position.
    pub fn new(source: &str) -> PositionIndex {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(source);
        // Errors are reported by the serde_yaml pass with their own position; here we keep what was read.
        let _ = parser.load(&mut builder, false);
        let mut index = builder.index;
        index.source = source.to_string();
        index
    }

    /// Line and column (1-based) of `path`: its key when it names a mapping entry, else the node itself;
    /// the nearest existing ancestor when the path does not exist; `1:1` for an empty document.
    pub fn locate(&self, path: &Path) -> (u32, u32) {
        let (line, column) = self.locate_raw(path);
        within_source(&self.source, line, column)
    }

    fn locate_raw(&self, path: &Path) -> (u32, u32) {
        let resolved = self.resolve(path);
        let mut segments = resolved.0;
        loop {
            let candidate = Path(segments.clone());
            if let Some(pos) = self.keys.get(&candidate) {
                return *pos;
            }
            if let Some((pos, _)) = self.nodes.get(&candidate) {
                return *pos;
            }
            if segments.pop().is_none() {
                return (1, 1);
            }
        }
    }

    /// Where the value of `path` starts (not its key); falls back like [`PositionIndex::locate`].
    pub fn locate_value(&self, path: &Path) -> (u32, u32) {
        let resolved = self.resolve(path);
        match self.nodes.get(&resolved) {
            Some(((line, column), _)) => within_source(&self.source, *line, *column),
            None => self.locate(&resolved),
        }
    }

    /// Where `line`:`column` (1-based, in characters) of `text`, the value of the scalar at `path`,
    /// sits in the file. Only when the scalar is written so that its text maps one to one onto the
    /// source and the source confirms it: a literal block (`|`), or a one-line plain or quoted
    /// scalar without escapes before that point. `None` otherwise (the caller falls back to the key).
    pub fn locate_in_scalar(&self, path: &Path, text: &str, line: usize, column: usize) -> Option<(u32, u32)> {
        let ((vline, vcol), kind) = *self.nodes.get(&self.resolve(path))?;
        let NodeKind::Scalar(style) = kind else { return None };
        if line == 0 || column == 0 {
            return None;
        }
        let source_line =
            |n: usize| -> Option<Vec<char>> { self.source.lines().nth(n.checked_sub(1)?).map(|l| l.chars().collect()) };
        let (vline, vcol) = (vline as usize, vcol as usize);
        let text_line: Vec<char> = text.split('\n').nth(line - 1)?.chars().collect();
        let prefix = text_line.get(..column - 1)?;
        let first = source_line(vline)?;
        let shows = |start: usize| first.get(start..start + prefix.len()) == Some(prefix);
        let at = match style {
            // yaml-rust2 marks a literal block at its first content line, after the indentation;
            // the following lines map one to one.
            TScalarStyle::Literal => {
                let file_line = vline + line - 1;
                let indent = vcol - 1;
                if source_line(file_line)?.get(indent..)? != text_line.as_slice() {
                    return None;
                }
                (file_line, indent + column)
            }
            TScalarStyle::DoubleQuoted | TScalarStyle::SingleQuoted if line == 1 && shows(vcol) => {
                (vline, vcol + column)
            }
            TScalarStyle::Plain if line == 1 && shows(vcol - 1) => (vline, vcol + column - 1),
            _ => return None,
        };
        Some((u32::try_from(at.0).ok()?, u32::try_from(at.1).ok()?))
    }

    /// Kestra lets a single task stand where a list is expected (`then: {id: …}`); the parser then
    /// records that task at `then[0]`. Drop such `[0]` segments that land on a mapping.
    fn resolve(&self, path: &Path) -> Path {
        let mut out: Vec<Segment> = Vec::with_capacity(path.0.len());
        for seg in &path.0 {
            if *seg == Segment::Index(0) {
                let here = Path(out.clone());
                if matches!(self.nodes.get(&here), Some((_, NodeKind::Mapping))) {
                    continue;
                }
            }
            out.push(seg.clone());
        }
        Path(out)
    }
}

/// State of one open collection while events stream by.
enum Frame {
    /// `path` is `None` inside a complex key, whose contents have no path.
    Sequence { path: Option<Path>, next: usize },
    /// `pending` is `None` while a key is expected, `Some(key)` while its value is expected
    /// (`Some(None)` after a key that is not a scalar).
    Mapping {
        path: Option<Path>,
        pending: Option<Option<String>>,
    },
}

#[derive(Default)]
struct Builder {
    index: PositionIndex,
    stack: Vec<Frame>,
    /// Set after the first document: later documents are not part of the flow.
    done: bool,
    started: bool,
}

fn position(mark: Marker) -> (u32, u32) {
    // yaml-rust2 marks lines from 1 and columns from 0.
    (clamp(mark.line()), clamp(mark.col().saturating_add(1)))
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX).max(1)
}

impl Builder {
    /// The path of a node that starts now, or `None` when it is a key or sits inside a complex key.
    /// A scalar key is recorded in `keys` here.
    fn start_node(&mut self, scalar: Option<&str>, mark: Marker) -> Option<Path> {
        let pos = position(mark);
        match self.stack.last_mut() {
            None => {
                if self.started {
                    return None;
                }
                self.started = true;
                Some(Path::root())
            }
            Some(Frame::Sequence { path, next }) => {
                let i = *next;
                *next += 1;
                path.as_ref().map(|p| p.index(i))
            }
            Some(Frame::Mapping { path, pending }) => match pending {
                None => {
                    if let (Some(p), Some(key)) = (path.as_ref(), scalar) {
                        self.index.keys.entry(p.key(key)).or_insert(pos);
                        // yaml-rust2 may mark a block mapping a few columns into its first key;
                        // the mapping starts where its first key does.
                        if let Some((start, _)) = self.index.nodes.get_mut(p) {
                            *start = (*start).min(pos);
                        }
                    }
                    None
                }
                Some(Some(key)) => path.as_ref().map(|p| p.key(key)),
                Some(None) => None,
            },
        }
    }

    /// Called when a node is complete: its parent mapping moves from key to value or back.
    fn end_node(&mut self, scalar: Option<&str>) {
        if let Some(Frame::Mapping { pending, .. }) = self.stack.last_mut() {
            *pending = match pending {
                None => Some(scalar.map(str::to_string)),
                Some(_) => None,
            };
        }
    }

    fn record(&mut self, path: &Option<Path>, mark: Marker, kind: NodeKind) {
        if let Some(p) = path {
            self.index.nodes.entry(p.clone()).or_insert((position(mark), kind));
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done {
            return;
        }
        match ev {
            Event::Scalar(value, style, ..) => {
                let path = self.start_node(Some(&value), mark);
                self.record(&path, mark, NodeKind::Scalar(style));
                self.end_node(Some(&value));
            }
            Event::Alias(_) => {
                let path = self.start_node(None, mark);
                self.record(&path, mark, NodeKind::Alias);
                self.end_node(None);
            }
            Event::SequenceStart(..) => {
                let path = self.start_node(None, mark);
                self.record(&path, mark, NodeKind::Sequence);
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingStart(..) => {
                let path = self.start_node(None, mark);
                self.record(&path, mark, NodeKind::Mapping);
                self.stack.push(Frame::Mapping { path, pending: None });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
                self.end_node(None);
            }
            Event::DocumentEnd => self.done = true,
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Path {
        // Tiny path syntax for tests: `tasks[1].onResume[0].type`.
        let mut path = Path::root();
        for part in text.split('.').filter(|s| !s.is_empty()) {
            let mut rest = part;
            if let Some(i) = rest.find('[') {
                path = path.key(&rest[..i]);
                rest = &rest[i..];
                while let Some(end) = rest.find(']') {
                    path = path.index(rest[1..end].parse().unwrap());
                    rest = &rest[end + 1..];
                }
            } else {
                path = path.key(rest);
            }
        }
        path
    }

    const FLOW: &str = "\
id: demo
namespace: company.team
tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: hi
  - id: gate
    type: io.kestra.plugin.core.flow.Pause
    onResume:
      - id: approved
        type: BOOLEAN
";

    #[test]
    fn keys_point_at_the_key() {
        let idx = PositionIndex::new(FLOW);
        assert_eq!(idx.locate(&p("id")), (1, 1));
        assert_eq!(idx.locate(&p("namespace")), (2, 1));
        assert_eq!(idx.locate(&p("tasks")), (3, 1));
        assert_eq!(idx.locate(&p("tasks[0].message")), (6, 5));
        assert_eq!(idx.locate(&p("tasks[1].onResume[0].type")), (11, 9));
    }

    #[test]
    fn items_and_values_point_at_the_node() {
        let idx = PositionIndex::new(FLOW);
        // A block mapping starts at its first key.
        assert_eq!(idx.locate(&p("tasks[1]")), (7, 5));
        assert_eq!(idx.locate(&p("tasks[1].onResume[0]")), (10, 9));
        assert_eq!(idx.locate_value(&p("tasks[0].message")), (6, 14));
        assert_eq!(idx.locate(&Path::root()), (1, 1));
    }

    #[test]
    fn missing_nodes_fall_back_to_the_nearest_ancestor() {
        let idx = PositionIndex::new(FLOW);
        assert_eq!(idx.locate(&p("tasks[1].onResume[0].nope")), (10, 9));
        assert_eq!(idx.locate(&p("tasks[7].id")), (3, 1));
        assert_eq!(idx.locate(&p("outputs")), (1, 1));
    }

    #[test]
    fn single_task_in_place_of_a_list() {
        let src = "tasks:\n  - id: a\n    type: x\n    then:\n      id: b\n      type: y\n";
        let idx = PositionIndex::new(src);
        assert_eq!(idx.locate(&p("tasks[0].then[0].type")), (6, 7));
    }

    #[test]
    fn flow_style_and_nested_lists() {
        let src = "a: {b: [1, {c: 2}], d: x}\n";
        let idx = PositionIndex::new(src);
        assert_eq!(idx.locate(&p("a.b[1].c")), (1, 13));
        assert_eq!(idx.locate(&p("a.d")), (1, 21));
        assert_eq!(idx.locate_value(&p("a.b[0]")), (1, 9));
    }

    #[test]
    fn complex_keys_and_later_documents_are_ignored() {
        let src = "? [x, y]\n: 1\nk: v\n---\nk: w\nother: 1\n";
        let idx = PositionIndex::new(src);
        assert_eq!(idx.locate(&p("k")), (3, 1));
        assert_eq!(idx.locate(&p("other")), (1, 1));
    }

    #[test]
    fn broken_yaml_keeps_what_was_read() {
        let src = "id: a\nnamespace: b\ntasks: [\n";
        let idx = PositionIndex::new(src);
        assert_eq!(idx.locate(&p("namespace")), (2, 1));
        assert_eq!(PositionIndex::new("").locate(&p("id")), (1, 1));
    }

    #[test]
    fn positions_inside_scalars() {
        let src = "a: plain {{ x }}\nb: \"quoted {{ y }}\"\nc: |\n  first\n    second {{ z }}\nd: \"esc\\\"aped {{ w }}\"\ne: >\n  folded\nf:\n  - |-\n    x\n    {{ v }}\n";
        let idx = PositionIndex::new(src);
        assert_eq!(idx.locate_in_scalar(&p("a"), "plain {{ x }}", 1, 7), Some((1, 10)));
        assert_eq!(idx.locate_in_scalar(&p("b"), "quoted {{ y }}", 1, 8), Some((2, 12)));
        assert_eq!(
            idx.locate_in_scalar(&p("c"), "first\n  second {{ z }}\n", 2, 10),
            Some((5, 12))
        );
        // The source does not show the text as is: no position rather than a wrong one.
        assert_eq!(idx.locate_in_scalar(&p("d"), "esc\"aped {{ w }}", 1, 10), None);
        assert_eq!(idx.locate_in_scalar(&p("e"), "folded\n", 1, 1), None);
        assert_eq!(idx.locate_in_scalar(&p("a"), "something else", 1, 3), None);
        assert_eq!(idx.locate_in_scalar(&p("nope"), "x", 1, 1), None);
        assert_eq!(idx.locate_in_scalar(&p("f[0]"), "x\n{{ v }}", 2, 4), Some((12, 8)));
    }

    #[test]
    fn positions_stay_inside_the_file() {
        // Found by the fuzz target: yaml-rust2 marks the value of a lone tag on line 2.
        assert_eq!(PositionIndex::new("!").locate(&Path::root()), (1, 2));
        assert_eq!(within_source("a\nbc", 3, 1), (2, 3));
        assert_eq!(within_source("a\n", 2, 1), (2, 1));
        assert_eq!(within_source("a\rb\r\nc", 3, 1), (3, 1));
        assert_eq!(within_source("", 0, 0), (1, 1));
    }

    #[test]
    fn multibyte_text_counts_characters() {
        let src = "description: \"é→ü\"\nid: x\nlabels: {a: \"→\", b: c}\n";
        let idx = PositionIndex::new(src);
        assert_eq!(idx.locate(&p("labels.b")), (3, 18));
    }
}
