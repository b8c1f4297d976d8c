//! LISTEN/NOTIFY as a wake-up hint for the change feed. Every commit that writes a change-feed
//! row also notifies `tollgate_changes` (with its daemon's id), in the same statement; each daemon
//! listens on a connection of its own and wakes its change-feed reader. Correctness never
//! depends on it: the feed is still polled, so a lost notification (a dropped connection, a
//! proxy that does not pass them) only delays what the next poll finds.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls};

use super::{PgStore, describe};

/// The channel commits notify on.
pub(super) const CHANNEL: &str = "tollgate_changes";
/// Wait before connecting again after the listening connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

impl PgStore {
    /// Wakes `wake` when another daemon commits a change, until the store is dropped.
    /// Reconnects by itself; a lost notification only delays the next poll's findings.
    pub fn listen_for_changes(&self, wake: Arc<tokio::sync::Notify>) {
        let (config, tls) = (self.inner.config.clone(), self.inner.tls.clone());
        let (name, me) = (self.inner.name.clone(), self.inner.daemon_id.clone());
        self.inner.handle.spawn(async move {
            loop {
                let ended = match &tls {
                    Some(tls) => match config.connect(tls.clone()).await {
                        Ok((client, connection)) => listen(client, connection, &me, &wake).await,
                        Err(e) => Err(e),
                    },
                    None => match config.connect(NoTls).await {
                        Ok((client, connection)) => listen(client, connection, &me, &wake).await,
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = ended {
                    tracing::debug!(database = %name, error = %describe(&e), "change notifications interrupted; reconnecting");
                }
                // Whatever was notified meanwhile is found by a poll.
                wake.notify_one();
                tokio::time::sleep(RECONNECT).await;
            }
        });
    }
}

/// Listens on `client`'s connection until it ends, waking `wake` on notifications from other
/// daemons.
async fn listen<S, T>(
    client: Client,
    mut connection: Connection<S, T>,
    me: &str,
    wake: &tokio::sync::Notify,
) -> Result<(), tokio_postgres::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {CHANNEL}");
    let subscribe = client.batch_execute(&statement);
    tokio::pin!(subscribe);
    let mut subscribed = false;
    loop {
        tokio::select! {
            done = &mut subscribe, if !subscribed => {
                done?;
                subscribed = true;
                // Changes committed before LISTEN took effect are found by this poll.
                wake.notify_one();
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) if n.payload() != me => wake.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
}
