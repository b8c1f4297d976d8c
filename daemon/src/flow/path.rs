//! Paths to nodes of a flow document (`tasks[2].onResume[0].type`) and the issues found at them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Where in the YAML document a node sits, from the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path(pub Vec<Segment>);

impl Path {
    pub fn root() -> Path {
        Path(Vec::new())
    }
    pub fn key(&self, k: &str) -> Path {
        let mut v = self.0.clone();
        v.push(Segment::Key(k.to_string()));
        Path(v)
    }
    pub fn index(&self, i: usize) -> Path {
        let mut v = self.0.clone();
        v.push(Segment::Index(i));
        Path(v)
    }
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.0 {
            match seg {
                Segment::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
            first = false;
        }
        Ok(())
    }
}

/// A problem found in a flow, at a path or (for YAML syntax errors) at an explicit position.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: Path,
    pub position: Option<(u32, u32)>,
    pub message: String,
}

impl Issue {
    pub fn new(path: Path, message: String) -> Issue {
        Issue {
            path,
            position: None,
            message,
        }
    }
    pub fn at(line: u32, column: u32, message: String) -> Issue {
        Issue {
            path: Path::root(),
            position: Some((line, column)),
            message,
        }
    }
}
