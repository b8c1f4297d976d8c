//! The daemon remembers which principal a token authenticated as (so a client's every call skips
//! the token, user and role reads), but a change of rights on the running daemon applies to the
//! very next call on the same connection: a role removed, a role given back, a token revoked.

mod auth_common;

use auth_common::{ADMIN, VIEWER, admin_remote, channel, req, team};
use tollgate_proto::v1 as pb;
use tollgate_proto::v1::executions_client::ExecutionsClient;
use tonic::Code;

async fn list_test(ex: &mut ExecutionsClient<tonic::transport::Channel>, token: &str) -> Result<usize, tonic::Status> {
    ex.list(req(
        pb::ListExecutionsRequest {
            namespace: "test".into(),
            page_size: 100,
            ..Default::default()
        },
        Some(token),
    ))
    .await
    .map(|r| r.into_inner().executions.len())
}

fn role(team: &auth_common::Team, admin: &str, verb: &str) {
    admin_remote(
        &team.d,
        admin,
        &[
            "role",
            verb,
            "--user",
            VIEWER,
            "--role",
            "viewer",
            "--namespace",
            "test",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rights_changes_apply_to_the_next_call_of_a_remembered_token() {
    let team = team();
    let admin = team.token(ADMIN);
    let viewer = team.token(VIEWER);
    let mut ex = ExecutionsClient::new(channel(&team.d).await);
    ex.start(req(
        pb::StartRequest {
            namespace: "test".into(),
            flow_id: "approval".into(),
            ..Default::default()
        },
        Some(&admin),
    ))
    .await
    .expect("start");

    // Seen twice: the second answer comes from the remembered principal.
    assert_eq!(list_test(&mut ex, &viewer).await.expect("viewer lists"), 1);
    assert_eq!(list_test(&mut ex, &viewer).await.expect("viewer lists"), 1);

    role(&team, &admin, "unbind");
    assert_eq!(
        list_test(&mut ex, &viewer)
            .await
            .expect("a list of what the viewer may see"),
        0,
        "the removed role still applied"
    );

    role(&team, &admin, "bind");
    assert_eq!(
        list_test(&mut ex, &viewer).await.expect("viewer lists"),
        1,
        "the role given back did not apply"
    );

    // Revoked by its text, as `tollgated admin token revoke` also takes it.
    admin_remote(&team.d, &admin, &["token", "revoke", &viewer]);
    let refused = list_test(&mut ex, &viewer).await.expect_err("revoked token refused");
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(list_test(&mut ex, &admin).await.expect("admin lists"), 1);
}
