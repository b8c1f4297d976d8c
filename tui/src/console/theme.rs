//! Styles for every element, in colour or monochrome (NO_COLOR).
//!
//! Monochrome must stay readable: anything colour would distinguish is also bold, reversed or
//! underlined, so a NO_COLOR terminal loses nothing but hue.

use ratatui::style::{Color, Modifier, Style};

/// The console's palette; `color == false` honours NO_COLOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub const COLOR: Theme = Theme { color: true };
    pub const MONO: Theme = Theme { color: false };

    /// NO_COLOR (https://no-color.org): present and not empty disables colour.
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no_color }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn plain(self) -> Style {
        Style::default()
    }

    /// The top line: product name, user, server.
    pub fn header(self) -> Style {
        if self.color {
            Style::default()
                .bg(Color::Blue)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    /// The active view/tab name.
    pub fn active_tab(self) -> Style {
        self.fg(Color::Yellow)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn inactive_tab(self) -> Style {
        self.fg(Color::Gray)
    }

    /// Table headings.
    pub fn heading(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// The highlighted (cursor) row: reversed in both modes so it never depends on colour.
    pub fn cursor(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    /// A multi-selected row.
    pub fn marked(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// Secondary text (descriptions, hints).
    pub fn dim(self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }

    pub fn error(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn ok(self) -> Style {
        self.fg(Color::Green).add_modifier(Modifier::BOLD)
    }

    pub fn warn(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    /// Footer key names.
    pub fn key(self) -> Style {
        if self.color {
            Style::default().fg(Color::Black).bg(Color::Cyan)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }

    /// The connection-lost banner.
    pub fn banner(self) -> Style {
        if self.color {
            Style::default()
                .bg(Color::Red)
                .fg(Color::White)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    /// Search matches in the logs.
    pub fn matched(self) -> Style {
        if self.color {
            Style::default().bg(Color::Yellow).fg(Color::Black)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::UNDERLINED)
        }
    }

    /// The focused form field's label.
    pub fn focus(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    /// An execution or task run state, coloured by outcome.
    pub fn state(self, state: &str) -> Style {
        match state {
            "SUCCESS" => self.fg(Color::Green),
            "FAILED" | "KILLED" | "CANCELLED" => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            "WARNING" => self.fg(Color::Yellow),
            "PAUSED" => self.fg(Color::Magenta).add_modifier(Modifier::BOLD),
            "RUNNING" | "CREATED" | "KILLING" => self.fg(Color::Blue),
            "RETRYING" | "RETRIED" | "QUEUED" => self.fg(Color::Cyan),
            "SKIPPED" => self.fg(Color::DarkGray),
            _ => self.plain(),
        }
    }

    /// A log level.
    pub fn level(self, level: &str) -> Style {
        match level {
            "ERROR" => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            "WARN" | "WARNING" => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            "DEBUG" | "TRACE" => self.dim(),
            _ => self.fg(Color::Green),
        }
    }

    /// YAML source highlighting: keys, comments, scalars.
    pub fn yaml_key(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn yaml_comment(self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default().add_modifier(Modifier::ITALIC)
        }
    }

    pub fn yaml_string(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn yaml_type(self) -> Style {
        self.fg(Color::Magenta).add_modifier(Modifier::BOLD)
    }
}
