//! A token revoked while its owner holds open streams ends those streams with UNAUTHENTICATED at
//! once, without waiting for the next event; a role removed on the running daemon stops the
//! events of that namespace. The revocation goes through the running daemon's admin API, as
//! `tollgated admin --server` does.

mod auth_common;

use std::time::Duration;

use auth_common::{ADMIN, OPERATOR, VIEWER, admin_remote, channel, req, team, team_with};
use tollgate_proto::v1 as pb;
use tollgate_proto::v1::executions_client::ExecutionsClient;
use tollgate_tests::{Daemon, DaemonOptions, postgres};
use tonic::Code;

/// Longer than any re-check should take, far shorter than the periodic expiry check (15 s):
/// an answer inside it can only come from the revocation itself.
const PROMPTLY: Duration = Duration::from_secs(5);

async fn paused(ex: &mut ExecutionsClient<tonic::transport::Channel>, token: &str) -> String {
    let id = ex
        .start(req(
            pb::StartRequest {
                namespace: "test".into(),
                flow_id: "approval".into(),
                ..Default::default()
            },
            Some(token),
        ))
        .await
        .expect("start")
        .into_inner()
        .execution
        .expect("execution")
        .id;
    for _ in 0..400 {
        let e = ex
            .get(req(pb::GetExecutionRequest { id: id.clone() }, Some(token)))
            .await
            .expect("get")
            .into_inner();
        if e.state == "PAUSED" {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("test.approval never paused");
}

/// Reads `stream` until it ends, which must happen within [`PROMPTLY`] and with UNAUTHENTICATED
/// (no event comes after a revocation: the stream must end on its own).
async fn assert_ends_unauthenticated<T>(stream: &mut tonic::Streaming<T>, what: &str) {
    let end = tokio::time::timeout(PROMPTLY, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"));
    let status = end
        .err()
        .unwrap_or_else(|| panic!("{what}: an error, not a silent end"));
    assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_token_ends_open_watch_and_tail_streams_at_once() {
    let team = team();
    let admin = team.token(ADMIN);
    let operator = team.token(OPERATOR);
    let ch = channel(&team.d).await;
    let mut ex = ExecutionsClient::new(ch.clone());
    let id = paused(&mut ex, &admin).await;

    let mut watch = ex
        .watch(req(pb::WatchRequest::default(), Some(&operator)))
        .await
        .expect("operator may watch")
        .into_inner();
    let mut tail = ex
        .tail_logs(req(
            pb::TailLogsRequest {
                execution_id: id.clone(),
                from_seq: 0,
                follow: true,
            },
            Some(&operator),
        ))
        .await
        .expect("operator may tail")
        .into_inner();
    // The streams work before the revocation: an event for a new execution, the lines so far.
    let other = paused(&mut ex, &admin).await;
    let seen = tokio::time::timeout(PROMPTLY, async {
        while let Some(ev) = watch.message().await.expect("event") {
            if ev.execution.is_some_and(|e| e.id == other) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "the operator's Watch saw the new execution");
    let first = tokio::time::timeout(PROMPTLY, tail.message())
        .await
        .expect("first log batch");
    assert!(
        matches!(first, Ok(Some(_))),
        "the operator's TailLogs answered: {first:?}"
    );

    admin_remote(&team.d, &admin, &["token", "revoke", &operator]);

    // No event happens after the revocation: the streams must end on their own.
    assert_ends_unauthenticated(&mut watch, "Watch ended promptly after the revocation").await;
    assert_ends_unauthenticated(&mut tail, "TailLogs ended promptly after the revocation").await;

    // And a new call with the revoked token is refused, while the admin's still works.
    let again = ex
        .watch(req(pb::WatchRequest::default(), Some(&operator)))
        .await
        .expect_err("revoked token refused");
    assert_eq!(again.code(), Code::Unauthenticated);
    ex.get(req(pb::GetExecutionRequest { id }, Some(&admin)))
        .await
        .expect("the admin's token still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_role_stops_events_of_that_namespace() {
    let team = team();
    let admin = team.token(ADMIN);
    let viewer = team.token(VIEWER);
    let ch = channel(&team.d).await;
    let mut ex = ExecutionsClient::new(ch.clone());
    let mut watch = ex
        .watch(req(pb::WatchRequest::default(), Some(&viewer)))
        .await
        .expect("viewer may watch")
        .into_inner();
    let before = paused(&mut ex, &admin).await;
    let seen = tokio::time::timeout(PROMPTLY, async {
        while let Some(ev) = watch.message().await.expect("event") {
            if ev.execution.is_some_and(|e| e.id == before) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "the viewer saw `test` before the change");

    admin_remote(
        &team.d,
        &admin,
        &[
            "role",
            "unbind",
            "--user",
            VIEWER,
            "--role",
            "viewer",
            "--namespace",
            "test",
        ],
    );
    let after = paused(&mut ex, &admin).await;
    // A marker the viewer may still see would need another namespace; instead, wait long enough
    // for the `test` events to have arrived had they been sent, and check none of them did.
    let leaked = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(ev)) = watch.message().await {
            if ev.execution.is_some_and(|e| e.namespace == "test" && e.id == after) {
                return true;
            }
        }
        false
    })
    .await;
    assert_ne!(
        leaked,
        Ok(true),
        "no event of `test` reaches the viewer after the unbind"
    );
}

/// The same secret key for every daemon of one database, as the README requires.
const SHARED_KEY: &str = "dG9sbGdhdGUtdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";

/// Several daemons on one database: each remembers the principals of tokens it has seen. A token
/// revoked through one daemon must be refused by the others at once, and their open streams of
/// that token must end, not only on the daemon that took the revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_daemon_is_refused_by_the_others_at_once() {
    let options = DaemonOptions {
        extra_args: vec!["--store".into(), postgres::new_database()],
        env: vec![("TOLLGATE_SECRET_KEY".into(), SHARED_KEY.into())],
        ..DaemonOptions::default()
    };
    let team = team_with(options.clone());
    let other = Daemon::start_with(DaemonOptions {
        insecure: false,
        ..options
    });
    let admin = team.token(ADMIN);
    let operator = team.token(OPERATOR);
    let mut ex = ExecutionsClient::new(channel(&other).await);
    // The other daemon has seen the operator's token: it remembers the principal.
    ex.list(req(pb::ListExecutionsRequest::default(), Some(&operator)))
        .await
        .expect("the operator may list");
    let mut watch = ex
        .watch(req(pb::WatchRequest::default(), Some(&operator)))
        .await
        .expect("the operator may watch")
        .into_inner();

    admin_remote(&team.d, &admin, &["token", "revoke", &operator]);

    assert_ends_unauthenticated(
        &mut watch,
        "the Watch on the other daemon ended promptly after the revocation",
    )
    .await;
    let refused = tokio::time::timeout(PROMPTLY, async {
        loop {
            match ex
                .list(req(pb::ListExecutionsRequest::default(), Some(&operator)))
                .await
            {
                Err(status) => return status,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("the other daemon refused the revoked token promptly");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    ex.list(req(pb::ListExecutionsRequest::default(), Some(&admin)))
        .await
        .expect("the admin's token still works there");
}
