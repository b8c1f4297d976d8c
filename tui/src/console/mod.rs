//! The interactive console (ratatui + crossterm).
//!
//! INTERFACE: `run(clients, options) -> anyhow::Result<()>` takes over the terminal until the user quits.

pub mod action;
pub mod app;
pub mod backoff;
pub mod dispatch;
pub mod event_loop;
pub mod exec_list;
pub mod exec_store;
pub mod form;
pub mod identity;
pub mod input_check;
pub mod log_tail;
pub mod messages;
pub mod pages;
pub mod sync;
pub mod terminal;
pub mod text_input;
pub mod theme;
pub mod time_fmt;
pub mod ui;

use std::time::Duration;

use anyhow::Context;
use crossterm::event::EventStream;
use tokio::sync::mpsc;

use crate::client::Clients;
use app::{App, AppOptions, Screen};
use dispatch::Dispatcher;
use theme::Theme;

/// How the console was started.
#[derive(Debug, Clone, Default)]
pub struct ConsoleOptions {
    /// Shown in the header (until the daemon's Whoami answers).
    pub user: Option<String>,
    /// Shown in the header; defaults to the address the clients connect to.
    pub server: Option<String>,
    /// The first screen (default: executions).
    pub screen: Option<Screen>,
    /// Force monochrome; `None` follows the NO_COLOR environment variable.
    pub no_color: Option<bool>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Takes over the terminal until the user quits; restores it on every way out.
pub async fn run(clients: Clients, options: ConsoleOptions) -> anyhow::Result<()> {
    let theme = match options.no_color {
        Some(true) => Theme::MONO,
        Some(false) => Theme::COLOR,
        None => Theme::from_env(),
    };
    let mut app = App::new(AppOptions {
        user: options.user.clone(),
        server: options.server.clone().unwrap_or_else(|| clients.server.clone()),
        theme,
        now_ms: now_ms(),
        screen: options.screen.unwrap_or(Screen::Executions),
    });
    // Bounded: if drawing falls behind, the gRPC tasks wait instead of growing memory.
    let (updates_tx, updates_rx) = mpsc::channel(4096);
    let (tabs_tx, tabs_rx) = mpsc::unbounded_channel();
    let sync = tokio::spawn(sync::run(clients.clone(), tabs_rx, updates_tx.clone()));
    let mut dispatcher = Dispatcher::new(clients, tabs_tx, updates_tx);
    let (mut terminal, restore) = terminal::enter().context("cannot take over the terminal")?;
    let result = event_loop::run(
        &mut terminal,
        &mut app,
        EventStream::new(),
        updates_rx,
        |c| dispatcher.send(c),
        event_loop::Clock {
            now_ms,
            tick: Duration::from_secs(1),
        },
        terminal::termination(),
    )
    .await;
    drop(restore);
    sync.abort();
    drop(dispatcher);
    result.context("terminal input/output failed")
}
