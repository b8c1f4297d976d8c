//! Listing executions: a SUMMARY list as one `ListRows` stream of pages, read while earlier
//! pages decode; otherwise page by page with the next page's request on the wire while the
//! current page decodes. A page's token is inside its answer, so the answer is first read as its raw
//! parts (rows as undecoded bytes, the token as text: cheap), the next request is sent, and
//! only then are the 1,000 rows decoded: the daemon builds page N+1 while we decode page N.

use prost::Message;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use tokio::sync::mpsc;
use tollgate_proto::v1 as pb;
use tonic::codegen::{Body, Bytes, StdError, http};

use super::exec_store::{ExecRow, Pause, RowParts, build_row};

/// `ListExecutionsResponse` with its rows and forms left encoded: the same field numbers and
/// wire types (an embedded message is length-delimited bytes on the wire), so the daemon's
/// answer reads as this type too. Fields this does not name (`total`) are skipped.
#[derive(Clone, PartialEq, Message)]
struct RawListResponse {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    executions: Vec<Bytes>,
    #[prost(string, tag = "2")]
    next_page_token: String,
    #[prost(bytes = "bytes", repeated, tag = "4")]
    forms: Vec<Bytes>,
}

/// One decoded page: its rows as the console keeps them (decoded straight from the wire, no
/// `pb::Execution` in between), and the pause forms they use.
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<ExecRow>,
    pub forms: Vec<pb::PauseForm>,
    pub last: bool,
}

/// A whole page answer at most this large (the daemon's pages of 1,000 rows are far smaller).
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

async fn list_raw<T>(svc: T, req: pb::ListExecutionsRequest) -> Result<RawListResponse, tonic::Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let (mut grpc, request) = raw_call(svc, req, "List").await?;
    let path = http::uri::PathAndQuery::from_static("/tollgate.v1.Executions/List");
    Ok(grpc.unary(request, path, raw_codec()).await?.into_inner())
}

/// A ready client for a List-shaped call (`method` of tollgate.v1.Executions) whose answers are
/// read as [`RawListResponse`], and its request.
async fn raw_call<T>(
    svc: T,
    req: pb::ListExecutionsRequest,
    method: &'static str,
) -> Result<(tonic::client::Grpc<T>, tonic::Request<pb::ListExecutionsRequest>), tonic::Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let mut grpc = tonic::client::Grpc::new(svc).max_decoding_message_size(MAX_PAGE_BYTES);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {}", e.into())))?;
    let mut request = tonic::Request::new(req);
    request
        .extensions_mut()
        .insert(tonic::GrpcMethod::new("tollgate.v1.Executions", method));
    Ok((grpc, request))
}

fn raw_codec() -> tonic_prost::ProstCodec<pb::ListExecutionsRequest, RawListResponse> {
    tonic_prost::ProstCodec::default()
}

fn decode(raw: RawListResponse) -> Result<Page, tonic::Status> {
    let bad = |what: &str, e: prost::DecodeError| {
        tonic::Status::internal(format!("the daemon sent a {what} that does not decode: {e}"))
    };
    let mut forms = raw
        .forms
        .into_iter()
        .map(|b| pb::PauseForm::decode(b).map_err(|e| bad("pause form", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(raw.executions.len());
    for b in &raw.executions {
        rows.push(decode_row(b, &mut forms).map_err(|e| bad("row", e))?);
    }
    Ok(Page {
        rows,
        forms,
        last: raw.next_page_token.is_empty(),
    })
}

/// An encoded `pb::Execution` as a console row, reading only the fields a row keeps (task runs,
/// inputs, outputs and trigger of a FULL row are stepped over). A pause that carries its form
/// (FULL) adds it to `forms`; a SUMMARY row's forms come with the page.
pub fn decode_row(mut buf: &[u8], forms: &mut Vec<pb::PauseForm>) -> Result<ExecRow, prost::DecodeError> {
    let mut row = RowParts::default();
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf)?;
        match (tag, wire) {
            (1, WireType::LengthDelimited) => row.id = text(&mut buf)?,
            (2, WireType::LengthDelimited) => row.namespace = text(&mut buf)?,
            (3, WireType::LengthDelimited) => row.flow_id = text(&mut buf)?,
            (5, WireType::LengthDelimited) => row.state = text(&mut buf)?,
            (6, WireType::LengthDelimited) => {
                let mut entry = field(&mut buf)?;
                let (mut k, mut v) = (String::new(), String::new());
                while !entry.is_empty() {
                    match decode_key(&mut entry)? {
                        (1, WireType::LengthDelimited) => k = text(&mut entry)?,
                        (2, WireType::LengthDelimited) => v = text(&mut entry)?,
                        (tag, wire) => skip_field(wire, tag, &mut entry, DecodeContext::default())?,
                    }
                }
                row.labels.push((k, v));
            }
            (9, WireType::Varint) => row.created_ms = decode_varint(&mut buf)? as i64,
            (12, WireType::LengthDelimited) => {
                let pause = field(&mut buf)?;
                row.pauses.push(decode_pause(pause, forms)?);
            }
            (13, WireType::LengthDelimited) => row.started_by = text(&mut buf)?,
            (15, WireType::Varint) => row.updated_ms = decode_varint(&mut buf)? as i64,
            (tag, wire) => skip_field(wire, tag, &mut buf, DecodeContext::default())?,
        }
    }
    Ok(build_row(row))
}

fn decode_pause(mut buf: &[u8], forms: &mut Vec<pb::PauseForm>) -> Result<Pause, prost::DecodeError> {
    let mut p = Pause {
        task_run_id: String::new(),
        task_id: String::new(),
        since_ms: 0,
        expires_ms: 0,
        assignee_users: Vec::new(),
        assignee_groups: Vec::new(),
        approvals_required: 0,
        approved_by: Vec::new(),
        approved_for: Vec::new(),
        escalated_to: Vec::new(),
        form_key: String::new(),
        rejection_reason_required: false,
    };
    let mut on_resume = Vec::new();
    while !buf.is_empty() {
        match decode_key(&mut buf)? {
            (1, WireType::LengthDelimited) => p.task_run_id = text(&mut buf)?,
            (2, WireType::LengthDelimited) => p.task_id = text(&mut buf)?,
            (3, WireType::Varint) => p.since_ms = decode_varint(&mut buf)? as i64,
            (4, WireType::Varint) => p.expires_ms = decode_varint(&mut buf)? as i64,
            (5, WireType::LengthDelimited) => on_resume.push(pb::InputSpec::decode(field(&mut buf)?)?),
            (6, WireType::LengthDelimited) => p.assignee_users.push(text(&mut buf)?),
            (7, WireType::LengthDelimited) => p.assignee_groups.push(text(&mut buf)?),
            (8, WireType::Varint) => p.approvals_required = decode_varint(&mut buf)? as u32,
            (9, WireType::LengthDelimited) => p.approved_by.push(text(&mut buf)?),
            (11, WireType::LengthDelimited) => p.form_key = text(&mut buf)?,
            (12, WireType::LengthDelimited) => p.escalated_to.push(text(&mut buf)?),
            (14, WireType::Varint) => p.rejection_reason_required = decode_varint(&mut buf)? != 0,
            (15, WireType::LengthDelimited) => p.approved_for.push(text(&mut buf)?),
            (tag, wire) => skip_field(wire, tag, &mut buf, DecodeContext::default())?,
        }
    }
    if !on_resume.is_empty() && !forms.iter().any(|f| f.form_key == p.form_key) {
        forms.push(pb::PauseForm {
            form_key: p.form_key.clone(),
            on_resume,
        });
    }
    Ok(p)
}

/// A length-delimited field's bytes.
// prost has no public constructor for its errors but this one (deprecated for users of its
// derive, which never need it).
#[allow(deprecated)]
fn field<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], prost::DecodeError> {
    let len = decode_varint(buf)?;
    let len = usize::try_from(len).ok().filter(|l| *l <= buf.len());
    let Some(len) = len else {
        return Err(prost::DecodeError::new("a field is longer than its message"));
    };
    let (v, rest) = buf.split_at(len);
    *buf = rest;
    Ok(v)
}

#[allow(deprecated)]
fn text(buf: &mut &[u8]) -> Result<String, prost::DecodeError> {
    let b = field(buf)?;
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(prost::DecodeError::new("a string is not UTF-8")),
    }
}

/// Opens the `ListRows` stream of `req`: every page of a SUMMARY list, sent one after the
/// other by the daemon (each message reads as a [`RawListResponse`]).
async fn stream_raw<T>(
    svc: T,
    req: pb::ListExecutionsRequest,
) -> Result<tonic::Streaming<RawListResponse>, tonic::Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let (mut grpc, request) = raw_call(svc, req, "ListRows").await?;
    let path = http::uri::PathAndQuery::from_static("/tollgate.v1.Executions/ListRows");
    Ok(grpc.server_streaming(request, path, raw_codec()).await?.into_inner())
}

/// Lists every page of `req` (its `page_token` is the first page's) into `pages`, in order.
/// Stops after the last page, at the first error (sent as `Err`), or when the receiver is gone.
/// SUMMARY lists come as one `ListRows` stream, read by a task of its own while pages decode
/// here; a daemon without it (or a FULL list) is asked page by page.
pub async fn list_all<T>(svc: T, req: pb::ListExecutionsRequest, pages: mpsc::Sender<Result<Page, tonic::Status>>)
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    if req.view == pb::ExecutionView::Summary as i32 {
        match stream_raw(svc.clone(), req.clone()).await {
            Ok(stream) => return from_stream(stream, pages).await,
            // A daemon from before ListRows: page by page below.
            Err(status) if status.code() == tonic::Code::Unimplemented => {}
            Err(status) => {
                let _ = pages.send(Err(status)).await;
                return;
            }
        }
    }
    list_paged(svc, req, pages).await
}

/// The pages of a `ListRows` stream: a task reads the answers as they come (still encoded:
/// cheap), so that the daemon's next pages are not held back while this one decodes.
async fn from_stream(mut stream: tonic::Streaming<RawListResponse>, pages: mpsc::Sender<Result<Page, tonic::Status>>) {
    let (raw_tx, mut raw_rx) = mpsc::channel::<Result<RawListResponse, tonic::Status>>(4);
    let reader = tokio::spawn(async move {
        loop {
            let next = match stream.message().await {
                Ok(Some(raw)) => Ok(raw),
                Ok(None) => Err(tonic::Status::unavailable(
                    "the daemon ended the list before its last page",
                )),
                Err(status) => Err(status),
            };
            let stop = next.as_ref().map_or(true, |raw| raw.next_page_token.is_empty());
            if raw_tx.send(next).await.is_err() || stop {
                return;
            }
        }
    });
    while let Some(raw) = raw_rx.recv().await {
        let page = raw.and_then(decode);
        let stop = page.as_ref().map_or(true, |p| p.last);
        if pages.send(page).await.is_err() || stop {
            break;
        }
    }
    reader.abort();
}

/// Lists page by page with `List`, each next page's request sent before the previous page is
/// decoded.
async fn list_paged<T>(svc: T, req: pb::ListExecutionsRequest, pages: mpsc::Sender<Result<Page, tonic::Status>>)
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    T::Future: Send,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let mut next = Some(tokio::spawn(list_raw(svc.clone(), req.clone())));
    while let Some(answer) = next.take() {
        let raw = match answer.await {
            Ok(Ok(raw)) => raw,
            Ok(Err(status)) => {
                let _ = pages.send(Err(status)).await;
                return;
            }
            Err(join) => {
                let _ = pages.send(Err(tonic::Status::cancelled(join.to_string()))).await;
                return;
            }
        };
        if !raw.next_page_token.is_empty() {
            let req = pb::ListExecutionsRequest {
                page_token: raw.next_page_token.clone(),
                ..req.clone()
            };
            next = Some(tokio::spawn(list_raw(svc.clone(), req)));
        }
        let page = decode(raw);
        let failed = page.is_err();
        if pages.send(page).await.is_err() || failed {
            if let Some(n) = next {
                n.abort();
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw reading of an answer finds the same rows, forms and token as the generated type:
    /// each row decoded straight from its bytes equals the row built from the decoded execution,
    /// for a SUMMARY row (form in the page) and a FULL one (form in its pause, task runs and
    /// inputs stepped over), every row field set.
    #[test]
    fn a_raw_answer_decodes_to_the_generated_answer() {
        let form = vec![pb::InputSpec {
            id: "ok".into(),
            ..Default::default()
        }];
        let pause = pb::PauseInfo {
            task_run_id: "r1".into(),
            task_id: "gate".into(),
            since_ms: 1_700_000_000_000,
            expires_ms: 1_700_000_900_000,
            assignee_users: vec!["ana@example.com".into()],
            assignee_groups: vec!["hr".into()],
            approvals_required: 2,
            approved_by: vec!["bob".into(), "cy".into()],
            approved_on_behalf_of: vec!["".into(), "dee".into()],
            behavior: "RESUME".into(),
            form_key: "k1".into(),
            escalated_to: vec!["boss".into()],
            reminders_sent: 3,
            rejection_reason_required: true,
            ..Default::default()
        };
        let full = pb::Execution {
            id: "c".into(),
            namespace: "hr.ops".into(),
            flow_id: "onboard".into(),
            flow_revision: 4,
            state: "PAUSED".into(),
            labels: [("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())].into(),
            inputs_json: "{\"x\":1}".into(),
            task_runs: vec![pb::TaskRun {
                id: "r1".into(),
                ..Default::default()
            }],
            created_ms: 1_699_000_000_000,
            ended_ms: 0,
            pauses: vec![pb::PauseInfo {
                form_key: "k2".into(),
                on_resume: form.clone(),
                ..pause.clone()
            }],
            started_by: "ana@example.com".into(),
            parent_execution_id: "p".into(),
            updated_ms: 1_700_000_000_001,
            trigger_json: "{}".into(),
            ..Default::default()
        };
        let answer = pb::ListExecutionsResponse {
            executions: vec![
                pb::Execution {
                    id: "a".into(),
                    state: "PAUSED".into(),
                    labels: [("team".to_string(), "hr".to_string())].into(),
                    pauses: vec![pause.clone()],
                    ..Default::default()
                },
                pb::Execution {
                    id: "b".into(),
                    created_ms: -5,
                    ..Default::default()
                },
                full.clone(),
            ],
            next_page_token: "PAUSED\u{0}0001\u{0}b".into(),
            total: 7,
            forms: vec![pb::PauseForm {
                form_key: "k1".into(),
                on_resume: form.clone(),
            }],
        };
        let raw = RawListResponse::decode(answer.encode_to_vec().as_slice()).expect("raw");
        assert_eq!(raw.next_page_token, answer.next_page_token);
        let page = decode(raw).expect("page");
        let want: Vec<ExecRow> = answer
            .executions
            .iter()
            .cloned()
            .map(super::super::exec_store::row_of)
            .collect();
        assert_eq!(page.rows, want);
        assert_eq!(
            page.rows[2].labels[0],
            ("a".to_string(), "1".to_string()),
            "labels sorted"
        );
        // The page's form, then the FULL row's own.
        let mut forms = answer.forms.clone();
        forms.push(pb::PauseForm {
            form_key: "k2".into(),
            on_resume: form,
        });
        assert_eq!(page.forms, forms);
        assert!(!page.last);
        let last =
            RawListResponse::decode(pb::ListExecutionsResponse::default().encode_to_vec().as_slice()).expect("raw");
        assert!(decode(last).expect("page").last);
        for broken in [&[0x0a, 0x05, b'a'][..], &[0x0a, 0x01, 0xff], &[0x62, 0x02, 0x0a, 0x09]] {
            let raw = RawListResponse {
                executions: vec![Bytes::copy_from_slice(broken)],
                ..Default::default()
            };
            assert!(decode(raw).is_err(), "{broken:?}");
        }
    }
}
