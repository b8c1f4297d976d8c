//! The console's loop: one `select!` over key events, updates from the gRPC tasks, and a 1 s
//! tick for waiting times. State changes first, then at most one draw — and only when something
//! visible changed, which keeps traffic low over slow SSH links.

use std::future::Future;
use std::io;
use std::time::Duration;

use crossterm::event::Event;
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

use super::action;
use super::app::App;
use super::messages::{Command, Update};
use super::ui;

/// Most updates folded in before a redraw (a burst of Watch events costs one frame).
const BATCH: usize = 10_000;

/// Where the loop reads the time, and how often (tests pass a fixed clock).
pub struct Clock<N: FnMut() -> i64> {
    pub now_ms: N,
    pub tick: Duration,
}

/// Runs until the user quits, the input ends, or `stop` completes (a termination signal).
pub async fn run<B, E, S, N>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    mut events: E,
    mut updates: mpsc::Receiver<Update>,
    mut send: impl FnMut(Command),
    mut clock: Clock<N>,
    stop: S,
) -> io::Result<()>
where
    B: Backend,
    E: Stream<Item = io::Result<Event>> + Unpin,
    S: Future<Output = ()>,
    N: FnMut() -> i64,
{
    for c in app.start() {
        send(c);
    }
    let mut ticker = tokio::time::interval(clock.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(stop);
    loop {
        if app.quit {
            return Ok(());
        }
        if app.take_redraw() {
            app.settle();
            terminal.draw(|f| ui::draw(f, app))?;
        }
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(key))) => {
                    if let Some(a) = action::map(app.ctx(), key) {
                        for c in app.handle(a) {
                            send(c);
                        }
                    }
                }
                Some(Ok(Event::Resize(_, _))) => app.request_redraw(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
            Some(u) = updates.recv() => {
                for c in app.apply(u) {
                    send(c);
                }
                for _ in 0..BATCH {
                    match updates.try_recv() {
                        Ok(u) => {
                            for c in app.apply(u) {
                                send(c);
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            _ = ticker.tick() => {
                app.tick((clock.now_ms)());
            }
            _ = &mut stop => return Ok(()),
        }
    }
}
