//! Keeps the console's mirror of executions current: one Watch stream for changes, List paging
//! for the initial load of each tab, and reconnection with backoff when the daemon goes away.
//!
//! Watch is opened before the Lists so no change made during a load is missed; after a
//! reconnect every tab the UI asked for is listed again (changes made while disconnected).

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tollgate_proto::v1 as pb;

use super::backoff::Backoff;
use super::messages::{Connection, RpcError, Tab, Update};
use super::pages;
use crate::client::Clients;

/// Executions per List call (the daemon's maximum).
const PAGE_SIZE: u32 = 1000;

/// Runs until the UI drops its receiver (or the tab channel closes).
pub async fn run(clients: Clients, mut tabs: mpsc::UnboundedReceiver<Tab>, tx: mpsc::Sender<Update>) {
    let mut wanted: Vec<Tab> = Vec::new();
    let mut backoff = Backoff::default();
    loop {
        let mut watch_client = clients.executions.clone();
        let error = match watch_client.watch(pb::WatchRequest::default()).await {
            Ok(resp) => {
                backoff.reset();
                if tx.send(Update::Connection(Connection::Connected)).await.is_err() {
                    return;
                }
                tokio::spawn(whoami(clients.clone(), tx.clone()));
                match follow(&clients, resp.into_inner(), &mut wanted, &mut tabs, &tx).await {
                    Some(e) => e,
                    None => return,
                }
            }
            Err(status) => RpcError::from(status).text(),
        };
        let delay = backoff.next_delay();
        let lost = Connection::Lost {
            error,
            retry_in_ms: delay.as_millis() as u64,
        };
        if tx.send(Update::Connection(lost)).await.is_err() {
            return;
        }
        // Wait out the delay, still collecting the tabs the UI asks for meanwhile.
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                t = tabs.recv() => match t {
                    Some(t) if !wanted.contains(&t) => wanted.push(t),
                    Some(_) => {}
                    None => return,
                },
            }
        }
    }
}

/// Forwards Watch events and runs tab loads until the stream breaks (`Some(error)`) or the UI is gone (`None`).
async fn follow(
    clients: &Clients,
    mut stream: tonic::Streaming<pb::ExecutionEvent>,
    wanted: &mut Vec<Tab>,
    tabs: &mut mpsc::UnboundedReceiver<Tab>,
    tx: &mpsc::Sender<Update>,
) -> Option<String> {
    let mut loads = JoinSet::new();
    for t in wanted.iter() {
        loads.spawn(load_tab(clients.clone(), *t, tx.clone()));
    }
    let error = loop {
        tokio::select! {
            msg = stream.message() => match msg {
                Ok(Some(ev)) => {
                    if tx.send(Update::Event(ev)).await.is_err() {
                        return None;
                    }
                }
                Ok(None) => break "the daemon closed the watch stream".to_string(),
                Err(status) => break RpcError::from(status).text(),
            },
            t = tabs.recv() => match t {
                Some(t) => {
                    if !wanted.contains(&t) {
                        wanted.push(t);
                    }
                    loads.spawn(load_tab(clients.clone(), t, tx.clone()));
                }
                None => return None,
            },
            Some(_) = loads.join_next(), if !loads.is_empty() => {}
        }
    };
    loads.abort_all();
    Some(error)
}

/// Lists every execution of a tab, page by page (the next page requested while this one decodes).
async fn load_tab(clients: Clients, tab: Tab, tx: mpsc::Sender<Update>) {
    // An empty first page marks the start of the load before the List is even sent: every Watch
    // event the UI sees after it is newer than the List's snapshot (see App::apply_page).
    if tx
        .send(Update::Page {
            tab,
            executions: vec![],
            forms: vec![],
            first: true,
            last: false,
        })
        .await
        .is_err()
    {
        return;
    }
    let req = pb::ListExecutionsRequest {
        states: tab.states().iter().map(|s| s.to_string()).collect(),
        page_size: PAGE_SIZE,
        // Rows, not whole executions: the detail view and forms Get what they need.
        view: pb::ExecutionView::Summary as i32,
        ..Default::default()
    };
    // Two decoded pages may wait here while the UI applies one: enough to keep the daemon busy.
    let (pages_tx, mut pages_rx) = mpsc::channel(2);
    tokio::spawn(pages::list_all(clients.service, req, pages_tx));
    while let Some(page) = pages_rx.recv().await {
        match page {
            Ok(page) => {
                let last = page.last;
                let update = Update::Rows {
                    tab,
                    rows: page.rows,
                    forms: page.forms,
                    first: false,
                    last,
                };
                if tx.send(update).await.is_err() || last {
                    return;
                }
            }
            Err(status) => {
                let _ = tx
                    .send(Update::ListFailed {
                        tab,
                        error: status.into(),
                    })
                    .await;
                return;
            }
        }
    }
}

/// Who we are, for HumanTask assignment hints; silently absent when the daemon cannot say.
async fn whoami(clients: Clients, tx: mpsc::Sender<Update>) {
    let mut auth = clients.auth;
    if let Ok(r) = auth.whoami(pb::WhoamiRequest {}).await {
        let r = r.into_inner();
        let _ = tx
            .send(Update::Whoami {
                roles: r.roles.iter().map(|b| (b.role.clone(), b.namespace.clone())).collect(),
                acting_for: r
                    .acting_for
                    .iter()
                    .map(|a| (a.user.clone(), a.groups.clone(), a.namespace.clone()))
                    .collect(),
                user: r.user,
                groups: r.groups,
            })
            .await;
    }
}
