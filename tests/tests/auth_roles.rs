//! Every gRPC call, made by every kind of caller: no token, a wrong token, a viewer, an operator,
//! an operator of another namespace, an admin of the namespace, and an admin of everything.
//! Each call is made against fresh fixtures (a new paused execution, a key to delete), so an
//! allowed call never spoils the next one.

mod auth_common;

use std::time::Duration;

use auth_common::{ADMIN, NS_ADMIN, OPERATOR, OUTSIDER, VIEWER, channel, email_of, req, team};
use tollgate_proto::v1 as pb;
use tollgate_proto::v1::{
    audit_client::AuditClient, auth_client::AuthClient, executions_client::ExecutionsClient, flows_client::FlowsClient,
    kv_client::KvClient, secrets_client::SecretsClient,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// What a call came to, from the caller's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum O {
    /// Allowed (and, for lists and streams, the `test` fixture was in the answer).
    Ok,
    /// PERMISSION_DENIED (for bulk calls: the per-id code).
    Denied,
    /// UNAUTHENTICATED.
    Unauth,
    /// Allowed, but nothing of `test` was in the answer.
    Hidden,
}

fn outcome(s: Status) -> O {
    match s.code() {
        Code::PermissionDenied => O::Denied,
        Code::Unauthenticated => O::Unauth,
        _ => panic!("unexpected status {s:?}"),
    }
}

fn of<T>(r: Result<T, Status>) -> O {
    r.map(|_| O::Ok).unwrap_or_else(outcome)
}

const THROWAWAY: &str =
    "id: throwaway\nnamespace: test\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n";

struct Fixture {
    ch: Channel,
    admin: String,
}

impl Fixture {
    fn ex(&self) -> ExecutionsClient<Channel> {
        ExecutionsClient::new(self.ch.clone())
    }

    /// A new execution of `ns/flow`, started by the admin, once it is paused.
    async fn paused(&self, ns: &str, flow: &str) -> String {
        let e = self
            .ex()
            .start(req(
                pb::StartRequest {
                    namespace: ns.into(),
                    flow_id: flow.into(),
                    ..Default::default()
                },
                Some(&self.admin),
            ))
            .await
            .expect("admin starts")
            .into_inner()
            .execution
            .expect("execution");
        for _ in 0..400 {
            let now = self
                .ex()
                .get(req(pb::GetExecutionRequest { id: e.id.clone() }, Some(&self.admin)))
                .await
                .expect("admin gets")
                .into_inner();
            if now.state == "PAUSED" {
                return e.id;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{ns}.{flow} never paused");
    }

    fn approve() -> std::collections::HashMap<String, String> {
        [("approved", "true"), ("reason", "ok")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Makes `rpc` as the holder of `token` (None = no header) and says how it came out.
    async fn call(&self, rpc: &str, token: Option<&str>) -> O {
        let ch = self.ch.clone();
        let mut ex = ExecutionsClient::new(ch.clone());
        let mut flows = FlowsClient::new(ch.clone());
        let mut kv = KvClient::new(ch.clone());
        let mut secrets = SecretsClient::new(ch.clone());
        let mut audit = AuditClient::new(ch.clone());
        let mut auth = AuthClient::new(ch.clone());
        let admin = Some(self.admin.as_str());
        match rpc {
            "Executions.Start" => of(ex
                .start(req(
                    pb::StartRequest {
                        namespace: "test".into(),
                        flow_id: "approval".into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await),
            "Executions.List" => {
                let id = self.paused("test", "approval").await;
                match ex
                    .list(req(
                        pb::ListExecutionsRequest {
                            page_size: 1000,
                            ..Default::default()
                        },
                        token,
                    ))
                    .await
                {
                    Ok(r) if r.get_ref().executions.iter().any(|e| e.id == id) => O::Ok,
                    Ok(r) => {
                        assert!(
                            r.get_ref().executions.iter().all(|e| e.namespace != "test"),
                            "nothing of `test` may be listed"
                        );
                        O::Hidden
                    }
                    Err(s) => outcome(s),
                }
            }
            "Executions.ListRows" => {
                use prost::Message;
                let id = self.paused("test", "approval").await;
                let list = async {
                    let mut stream = ex
                        .list_rows(req(
                            pb::ListExecutionsRequest {
                                page_size: 1000,
                                ..Default::default()
                            },
                            token,
                        ))
                        .await?
                        .into_inner();
                    let mut rows = Vec::new();
                    while let Some(page) = stream.message().await? {
                        for row in page.executions {
                            rows.push(pb::Execution::decode(row).expect("a row decodes"));
                        }
                        if page.next_page_token.is_empty() {
                            break;
                        }
                    }
                    Ok::<_, tonic::Status>(rows)
                };
                match list.await {
                    Ok(rows) if rows.iter().any(|e| e.id == id) => O::Ok,
                    Ok(rows) => {
                        assert!(
                            rows.iter().all(|e| e.namespace != "test"),
                            "nothing of `test` may be streamed"
                        );
                        O::Hidden
                    }
                    Err(s) => outcome(s),
                }
            }
            "Executions.Get" => {
                let id = self.paused("test", "approval").await;
                of(ex.get(req(pb::GetExecutionRequest { id }, token)).await)
            }
            "Executions.Resume" => {
                let id = self.paused("test", "approval").await;
                let o = of(ex
                    .resume(req(
                        pb::ResumeRequest {
                            id: id.clone(),
                            inputs: Self::approve(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await);
                if o != O::Ok {
                    let still = ex
                        .get(req(pb::GetExecutionRequest { id }, admin))
                        .await
                        .expect("admin gets");
                    assert_eq!(still.get_ref().state, "PAUSED", "a refused resume changes nothing");
                }
                o
            }
            "Executions.ValidateResume" => {
                let id = self.paused("test", "approval").await;
                of(ex
                    .validate_resume(req(
                        pb::ResumeRequest {
                            id,
                            inputs: Self::approve(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await)
            }
            "Executions.BulkResume" | "Executions.BulkKill" => {
                let id = self.paused("test", "approval").await;
                let r = if rpc == "Executions.BulkResume" {
                    ex.bulk_resume(req(
                        pb::BulkResumeRequest {
                            ids: vec![id.clone()],
                            inputs: Self::approve(),
                            ..Default::default()
                        },
                        token,
                    ))
                    .await
                } else {
                    ex.bulk_kill(req(
                        pb::BulkKillRequest {
                            ids: vec![id.clone()],
                            ..Default::default()
                        },
                        token,
                    ))
                    .await
                };
                match r {
                    Ok(r) => {
                        let one = &r.get_ref().results[0];
                        assert_eq!(one.id, id);
                        match one.code.as_str() {
                            "OK" => O::Ok,
                            "PERMISSION_DENIED" => O::Denied,
                            other => panic!("unexpected per-id code {other}: {}", one.message),
                        }
                    }
                    Err(s) => outcome(s),
                }
            }
            "Executions.Kill" => {
                let id = self.paused("test", "approval").await;
                of(ex
                    .kill(req(
                        pb::KillRequest {
                            id,
                            ..Default::default()
                        },
                        token,
                    ))
                    .await)
            }
            "Executions.TailLogs" => {
                let id = self.paused("test", "approval").await;
                match ex
                    .tail_logs(req(
                        pb::TailLogsRequest {
                            execution_id: id,
                            from_seq: 0,
                            follow: false,
                        },
                        token,
                    ))
                    .await
                {
                    Ok(stream) => {
                        let mut s = stream.into_inner();
                        of(s.message().await)
                    }
                    Err(s) => outcome(s),
                }
            }
            "Executions.Watch" => {
                // Whatever `test` event arrives first shows the caller may see `test`; a caller who
                // may not sees the `console` event made after it first.
                let test_id = self.paused("test", "approval").await;
                let stream = match ex.watch(req(pb::WatchRequest::default(), token)).await {
                    Ok(s) => s,
                    Err(s) => return outcome(s),
                };
                ex.kill(req(
                    pb::KillRequest {
                        id: test_id,
                        ..Default::default()
                    },
                    admin,
                ))
                .await
                .expect("admin kills");
                self.paused("console", "triage").await;
                let mut s = stream.into_inner();
                let event = tokio::time::timeout(Duration::from_secs(20), s.message())
                    .await
                    .expect("an event within 20 s")
                    .expect("an event, not an error")
                    .expect("the stream stays open");
                match event.execution.expect("execution").namespace.as_str() {
                    "test" => O::Ok,
                    "console" => O::Hidden,
                    other => panic!("event from {other}"),
                }
            }
            "Flows.Apply" => {
                let source = flows
                    .get(req(
                        pb::GetFlowRequest {
                            namespace: "test".into(),
                            id: "approval".into(),
                            revision: 0,
                        },
                        admin,
                    ))
                    .await
                    .expect("admin reads the flow")
                    .into_inner()
                    .source;
                of(flows
                    .apply(req(
                        pb::ApplyFlowRequest {
                            source,
                            file_name: "approval.yaml".into(),
                        },
                        token,
                    ))
                    .await)
            }
            "Flows.Validate" => of(flows
                .validate(req(
                    pb::ValidateFlowRequest {
                        source: THROWAWAY.into(),
                        file_name: "t.yaml".into(),
                    },
                    token,
                ))
                .await),
            "Flows.List" => match flows.list(req(pb::ListFlowsRequest::default(), token)).await {
                Ok(r) if r.get_ref().flows.iter().any(|f| f.namespace == "test") => O::Ok,
                Ok(_) => O::Hidden,
                Err(s) => outcome(s),
            },
            "Flows.Get" => of(flows
                .get(req(
                    pb::GetFlowRequest {
                        namespace: "test".into(),
                        id: "approval".into(),
                        revision: 0,
                    },
                    token,
                ))
                .await),
            "Flows.Delete" => {
                flows
                    .apply(req(
                        pb::ApplyFlowRequest {
                            source: THROWAWAY.into(),
                            file_name: "t.yaml".into(),
                        },
                        admin,
                    ))
                    .await
                    .expect("admin applies");
                of(flows
                    .delete(req(
                        pb::DeleteFlowRequest {
                            namespace: "test".into(),
                            id: "throwaway".into(),
                        },
                        token,
                    ))
                    .await)
            }
            "Kv.Set" | "Kv.Get" | "Kv.List" | "Kv.Delete" => {
                let set = |t: Option<&str>| {
                    req(
                        pb::KvSetRequest {
                            namespace: "test".into(),
                            key: "k".into(),
                            value: "1".into(),
                            ..Default::default()
                        },
                        t,
                    )
                };
                kv.set(set(admin)).await.expect("admin sets");
                let key = |t: Option<&str>| {
                    req(
                        pb::KvKey {
                            namespace: "test".into(),
                            key: "k".into(),
                        },
                        t,
                    )
                };
                match rpc {
                    "Kv.Set" => of(kv.set(set(token)).await),
                    "Kv.Get" => of(kv.get(key(token)).await),
                    "Kv.Delete" => of(kv.delete(key(token)).await),
                    _ => of(kv
                        .list(req(
                            pb::KvListRequest {
                                namespace: "test".into(),
                            },
                            token,
                        ))
                        .await),
                }
            }
            "Secrets.Set" => of(secrets
                .set(req(
                    pb::SecretSetRequest {
                        namespace: "test".into(),
                        name: "S".into(),
                        value: "v".into(),
                    },
                    token,
                ))
                .await),
            "Secrets.List" => of(secrets
                .list(req(
                    pb::SecretListRequest {
                        namespace: "test".into(),
                    },
                    token,
                ))
                .await),
            "Secrets.Delete" => of(secrets
                .delete(req(
                    pb::SecretKey {
                        namespace: "test".into(),
                        name: "S".into(),
                    },
                    token,
                ))
                .await),
            "Audit.List" => match audit
                .list(req(
                    pb::ListAuditRequest {
                        limit: 10_000,
                        ..Default::default()
                    },
                    token,
                ))
                .await
            {
                Ok(r) => {
                    let records = &r.get_ref().records;
                    assert!(
                        records.iter().any(|r| r.namespace == "test"),
                        "test's records are listed"
                    );
                    if token != admin {
                        assert!(
                            records
                                .iter()
                                .all(|r| r.namespace == "test" || r.namespace.starts_with("test.")),
                            "an admin of `test` reads only the records of `test` and its children"
                        );
                    }
                    O::Ok
                }
                Err(s) => outcome(s),
            },
            "Audit.Verify" => of(audit.verify(req(pb::VerifyAuditRequest {}, token)).await),
            "Auth.Whoami" => of(auth.whoami(req(pb::WhoamiRequest {}, token)).await),
            other => panic!("no probe for {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_for_every_role() {
    let t = tokio::task::block_in_place(team);
    let fx = Fixture {
        ch: channel(&t.d).await,
        admin: t.token(ADMIN),
    };
    let wrong = {
        // The viewer's token with its last character changed: right id, wrong secret.
        let mut s = t.token(VIEWER);
        let last = if s.ends_with('0') { '1' } else { '0' };
        s.pop();
        s.push(last);
        s
    };
    let callers: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("wrong token", Some(wrong)),
        ("viewer", Some(t.token(VIEWER))),
        ("operator", Some(t.token(OPERATOR))),
        ("outsider", Some(t.token(OUTSIDER))),
        ("ns admin", Some(t.token(NS_ADMIN))),
        ("admin", Some(t.token(ADMIN))),
    ];
    use O::{Denied as D, Hidden as H, Ok as A, Unauth as U};
    #[rustfmt::skip]
    let expected: &[(&str, [O; 7])] = &[
        //                            none wrong viewer oper outsider nsadm admin
        ("Executions.Start",          [U, U, D, A, D, A, A]),
        ("Executions.List",           [U, U, A, A, H, A, A]),
        ("Executions.ListRows",       [U, U, A, A, H, A, A]),
        ("Executions.Get",            [U, U, A, A, D, A, A]),
        ("Executions.Resume",         [U, U, D, A, D, A, A]),
        ("Executions.ValidateResume", [U, U, D, A, D, A, A]),
        ("Executions.BulkResume",     [U, U, D, A, D, A, A]),
        ("Executions.Kill",           [U, U, D, A, D, A, A]),
        ("Executions.BulkKill",       [U, U, D, A, D, A, A]),
        ("Executions.TailLogs",       [U, U, A, A, D, A, A]),
        ("Executions.Watch",          [U, U, A, A, H, A, A]),
        ("Flows.Apply",               [U, U, D, D, D, A, A]),
        ("Flows.Validate",            [U, U, A, A, A, A, A]),
        ("Flows.List",                [U, U, A, A, H, A, A]),
        ("Flows.Get",                 [U, U, A, A, D, A, A]),
        ("Flows.Delete",              [U, U, D, D, D, A, A]),
        ("Kv.Set",                    [U, U, D, D, D, A, A]),
        ("Kv.Get",                    [U, U, D, D, D, A, A]),
        ("Kv.List",                   [U, U, D, D, D, A, A]),
        ("Kv.Delete",                 [U, U, D, D, D, A, A]),
        ("Secrets.Set",               [U, U, D, D, D, A, A]),
        ("Secrets.List",              [U, U, D, D, D, A, A]),
        ("Secrets.Delete",            [U, U, D, D, D, A, A]),
        ("Audit.List",                [U, U, D, D, D, A, A]),
        ("Audit.Verify",              [U, U, D, D, D, D, A]),
        ("Auth.Whoami",               [U, U, A, A, A, A, A]),
    ];
    let mut wrong_cells = Vec::new();
    for (rpc, row) in expected {
        for ((who, token), want) in callers.iter().zip(row) {
            let got = fx.call(rpc, token.as_deref()).await;
            if got != *want {
                wrong_cells.push(format!("{rpc} as {who}: expected {want:?}, got {got:?}"));
            }
        }
    }
    assert!(wrong_cells.is_empty(), "{}", wrong_cells.join("\n"));

    // Every refusal left its audit record, whatever the call: the caller, the action, DENIED.
    let records = AuditClient::new(fx.ch.clone())
        .list(req(
            pb::ListAuditRequest {
                limit: 10_000,
                ..Default::default()
            },
            Some(&fx.admin),
        ))
        .await
        .expect("the admin reads the audit log")
        .into_inner()
        .records;
    let mut unaudited = Vec::new();
    for (rpc, row) in expected {
        for ((who, _), want) in callers.iter().zip(row) {
            if *want != D {
                continue;
            }
            let action = audited_action(rpc);
            let found = records
                .iter()
                .any(|r| r.user == email_of(who) && r.action == action && r.result.starts_with("DENIED"));
            if !found {
                unaudited.push(format!("{rpc} refused to {who}: no `{action}` DENIED record"));
            }
        }
    }
    assert!(unaudited.is_empty(), "{}", unaudited.join("\n"));
    for (given, what) in [("false", "no token"), ("true", "a wrong token")] {
        assert!(
            records.iter().any(|r| r.action == "sign-in"
                && r.result.starts_with("DENIED")
                && r.values_json.contains(&format!("\"token_given\":{given}"))),
            "a call with {what} is audited as a refused sign-in"
        );
    }
}

/// The audit action a refused RPC is recorded under.
fn audited_action(rpc: &str) -> &'static str {
    match rpc {
        "Executions.Start" => "start",
        "Executions.Resume" | "Executions.BulkResume" => "resume",
        "Executions.ValidateResume" => "resume.validate",
        "Executions.Kill" | "Executions.BulkKill" => "kill",
        "Executions.Get" | "Executions.TailLogs" | "Flows.Get" => "read",
        "Flows.Apply" => "flow.apply",
        "Flows.Delete" => "flow.delete",
        "Kv.Set" => "kv.set",
        "Kv.Get" | "Kv.List" => "kv.read",
        "Kv.Delete" => "kv.delete",
        "Secrets.Set" => "secret.set",
        "Secrets.List" => "secret.read",
        "Secrets.Delete" => "secret.delete",
        "Audit.List" => "audit.read",
        "Audit.Verify" => "audit.verify",
        other => panic!("no audited action for {other}"),
    }
}
