//! Issue 14, finding 6: a source nested 200,000 levels deep (`[[[[…`) cost the daemon quadratic
//! CPU in the YAML parser before the role was even known, so a mere viewer could keep it busy.
//! Now a caller who is admin nowhere is refused before anything is parsed, and the depth is
//! bounded by a linear pre-scan before the YAML parser runs. No times are asserted: on the old
//! code these calls simply run for minutes.

mod auth_common;

use auth_common::{ADMIN, NS_ADMIN, OPERATOR, VIEWER, channel, req, team};
use tollgate_proto::v1 as pb;
use tollgate_proto::v1::flows_client::FlowsClient;
use tonic::Code;
use tonic::transport::Channel;

const LEVELS: usize = 200_000;

async fn apply(ch: &Channel, token: &str, source: &str) -> Result<pb::ApplyFlowResponse, tonic::Status> {
    FlowsClient::new(ch.clone())
        .apply(req(
            pb::ApplyFlowRequest {
                source: source.to_string(),
                file_name: "bomb.yaml".into(),
            },
            Some(token),
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_yaml_is_refused_cheaply_and_before_the_parse_for_non_admins() {
    let t = team();
    let ch = channel(&t.d).await;
    let flow_bomb = "[".repeat(LEVELS);
    // Block nesting needs no indentation when written as compact sequences: `- - - - …`.
    let block_bomb = "- ".repeat(LEVELS);

    // Callers who are admin of no namespace at all may not apply any flow: refused before parsing.
    for who in [VIEWER, OPERATOR] {
        let s = apply(&ch, &t.token(who), &flow_bomb).await.expect_err("refused");
        assert_eq!(s.code(), Code::PermissionDenied, "{who}: {s:?}");
    }

    // An admin (of everything, or of one namespace: the bomb's namespace is unknown until it is
    // parsed) is told the source nests too deep, where the limit is crossed.
    for who in [ADMIN, NS_ADMIN] {
        let s = apply(&ch, &t.token(who), &flow_bomb).await.expect_err("refused");
        assert_eq!(s.code(), Code::InvalidArgument, "{who}: {s:?}");
        assert!(
            s.message()
                .contains("bomb.yaml:1:65: the YAML nests deeper than 64 levels"),
            "{who}: {}",
            s.message()
        );
        let s = apply(&ch, &t.token(who), &block_bomb).await.expect_err("refused");
        assert_eq!(s.code(), Code::InvalidArgument, "{who}: {s:?}");
        assert!(
            s.message()
                .contains("bomb.yaml:1:129: the YAML nests deeper than 64 levels"),
            "{who}: {}",
            s.message()
        );
    }

    // Validate needs no role beyond being signed in, and answers with the same diagnostic.
    let v = FlowsClient::new(ch.clone())
        .validate(req(
            pb::ValidateFlowRequest {
                source: flow_bomb.clone(),
                file_name: "bomb.yaml".into(),
            },
            Some(&t.token(VIEWER)),
        ))
        .await
        .expect("validate answers")
        .into_inner();
    assert_eq!(v.errors.len(), 1, "{:?}", v.errors);
    assert_eq!((v.errors[0].line, v.errors[0].column), (1, 65));
    assert!(v.errors[0].message.contains("deeper than 64 levels"), "{:?}", v.errors);

    // The daemon is still at work for everyone else.
    let ok = apply(
        &ch,
        &t.token(NS_ADMIN),
        "id: after_bomb\nnamespace: test\ntasks:\n  - id: a\n    type: io.kestra.plugin.core.log.Log\n    message: x\n",
    )
    .await
    .expect("a real flow still applies");
    assert!(ok.changed);
}
