//! Editable text: a one-line input with a cursor, and a multi-line area built from it.
//!
//! The cursor is a byte offset kept on a char boundary, so editing never splits a UTF-8 sequence.

use unicode_width::UnicodeWidthStr;

/// One line of editable text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextInput {
    text: String,
    cursor: usize,
}

impl TextInput {
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let cursor = text.len();
        TextInput { text, cursor }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The cursor's byte offset.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Display columns before the cursor (for placing the terminal cursor).
    pub fn cursor_column(&self) -> usize {
        self.text[..self.cursor].width()
    }

    pub fn set(&mut self, text: impl Into<String>) {
        self.text = text.into();
        self.cursor = self.text.len();
    }

    pub fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += c.len_utf8();
    }

    pub fn insert_str(&mut self, s: &str) {
        self.text.insert_str(self.cursor, s);
        self.cursor += s.len();
    }

    pub fn backspace(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
            self.text.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    pub fn left(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
        }
    }

    pub fn right(&mut self) {
        if let Some(c) = self.text[self.cursor..].chars().next() {
            self.cursor += c.len_utf8();
        }
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.text.len();
    }

    /// Deletes everything before the cursor (readline's ctrl-u).
    pub fn clear_before(&mut self) {
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
    }

    /// Deletes the word before the cursor (readline's ctrl-w).
    pub fn delete_word(&mut self) {
        let before = &self.text[..self.cursor];
        let trimmed = before.trim_end();
        let start = trimmed.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
    }

    /// Splits at the cursor, keeping the head; returns the tail (used by the text area's newline).
    fn split_off(&mut self) -> String {
        let tail = self.text.split_off(self.cursor);
        self.cursor = self.text.len();
        tail
    }

    /// Moves the cursor to the char nearest display column `col`.
    fn set_column(&mut self, col: usize) {
        let mut width = 0;
        self.cursor = self.text.len();
        for (i, c) in self.text.char_indices() {
            if width >= col {
                self.cursor = i;
                return;
            }
            width += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        }
    }
}

/// Several lines of editable text (JSON and YAML inputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextArea {
    lines: Vec<TextInput>,
    row: usize,
}

impl Default for TextArea {
    fn default() -> Self {
        TextArea {
            lines: vec![TextInput::default()],
            row: 0,
        }
    }
}

impl TextArea {
    pub fn new(text: &str) -> Self {
        let mut lines: Vec<TextInput> = text.split('\n').map(TextInput::new).collect();
        if lines.is_empty() {
            lines.push(TextInput::default());
        }
        let row = lines.len() - 1;
        TextArea { lines, row }
    }

    pub fn text(&self) -> String {
        self.lines.iter().map(|l| l.as_str()).collect::<Vec<_>>().join("\n")
    }

    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.is_empty())
    }

    pub fn lines(&self) -> &[TextInput] {
        &self.lines
    }

    /// (row, display column) of the cursor.
    pub fn cursor(&self) -> (usize, usize) {
        (self.row, self.current().cursor_column())
    }

    fn current(&self) -> &TextInput {
        &self.lines[self.row]
    }

    fn current_mut(&mut self) -> &mut TextInput {
        &mut self.lines[self.row]
    }

    pub fn insert(&mut self, c: char) {
        if c == '\n' {
            self.newline();
        } else {
            self.current_mut().insert(c);
        }
    }

    pub fn newline(&mut self) {
        let tail = self.current_mut().split_off();
        self.row += 1;
        let mut next = TextInput::new(tail);
        next.home();
        self.lines.insert(self.row, next);
    }

    pub fn backspace(&mut self) {
        if self.current().cursor() > 0 {
            self.current_mut().backspace();
        } else if self.row > 0 {
            let line = self.lines.remove(self.row);
            self.row -= 1;
            let prev = self.current_mut();
            let at = prev.as_str().len();
            prev.set(format!("{}{}", prev.as_str(), line.as_str()));
            prev.cursor = at;
        }
    }

    pub fn delete(&mut self) {
        let cur = self.current();
        if cur.cursor() < cur.as_str().len() {
            self.current_mut().delete();
        } else if self.row + 1 < self.lines.len() {
            let next = self.lines.remove(self.row + 1);
            let cur = self.current_mut();
            let at = cur.cursor();
            cur.set(format!("{}{}", cur.as_str(), next.as_str()));
            cur.cursor = at;
        }
    }

    pub fn left(&mut self) {
        if self.current().cursor() > 0 {
            self.current_mut().left();
        } else if self.row > 0 {
            self.row -= 1;
            self.current_mut().end();
        }
    }

    pub fn right(&mut self) {
        let cur = self.current();
        if cur.cursor() < cur.as_str().len() {
            self.current_mut().right();
        } else if self.row + 1 < self.lines.len() {
            self.row += 1;
            self.current_mut().home();
        }
    }

    pub fn up(&mut self) {
        if self.row > 0 {
            let col = self.current().cursor_column();
            self.row -= 1;
            self.current_mut().set_column(col);
        }
    }

    pub fn down(&mut self) {
        if self.row + 1 < self.lines.len() {
            let col = self.current().cursor_column();
            self.row += 1;
            self.current_mut().set_column(col);
        }
    }

    pub fn home(&mut self) {
        self.current_mut().home();
    }

    pub fn end(&mut self) {
        self.current_mut().end();
    }

    pub fn clear_before(&mut self) {
        self.current_mut().clear_before();
    }

    pub fn delete_word(&mut self) {
        self.current_mut().delete_word();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editing_keeps_utf8_boundaries() {
        let mut t = TextInput::new("héllo");
        t.left();
        t.left();
        t.left();
        t.backspace();
        assert_eq!(t.as_str(), "hllo");
        t.insert('é');
        assert_eq!(t.as_str(), "héllo");
        assert_eq!(t.cursor_column(), 2);
        t.end();
        t.delete_word();
        assert_eq!(t.as_str(), "");
        t.insert_str("a b");
        t.left();
        t.clear_before();
        assert_eq!(t.as_str(), "b");
    }

    #[test]
    fn text_area_splits_and_joins_lines() {
        let mut a = TextArea::new("{\"a\": 1}");
        a.left();
        a.newline();
        assert_eq!(a.text(), "{\"a\": 1\n}");
        a.backspace();
        assert_eq!(a.text(), "{\"a\": 1}");
        a.end();
        a.newline();
        a.insert('x');
        a.up();
        assert_eq!(a.cursor().0, 0);
        a.down();
        a.delete();
        assert_eq!(a.text(), "{\"a\": 1}\nx");
    }
}
