//! Listing executions page by page with the next page's request on the wire while the current
//! page decodes. A page's token is inside its answer, so the answer is first read as its raw
//! parts (rows as undecoded bytes, the token as text: cheap), the next request is sent, and
//! only then are the 1,000 rows decoded: the daemon builds page N+1 while we decode page N.

use prost::Message;
use tokio::sync::mpsc;
use tollgate_proto::v1 as pb;
use tonic::codegen::{Body, Bytes, StdError, http};

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

/// One decoded page.
#[derive(Debug, Default)]
pub struct Page {
    pub executions: Vec<pb::Execution>,
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
    let mut grpc = tonic::client::Grpc::new(svc).max_decoding_message_size(MAX_PAGE_BYTES);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {}", e.into())))?;
    let codec = tonic_prost::ProstCodec::<pb::ListExecutionsRequest, RawListResponse>::default();
    let path = http::uri::PathAndQuery::from_static("/tollgate.v1.Executions/List");
    let mut request = tonic::Request::new(req);
    request
        .extensions_mut()
        .insert(tonic::GrpcMethod::new("tollgate.v1.Executions", "List"));
    Ok(grpc.unary(request, path, codec).await?.into_inner())
}

fn decode(raw: RawListResponse) -> Result<Page, tonic::Status> {
    let bad = |what: &str, e: prost::DecodeError| {
        tonic::Status::internal(format!("the daemon sent a {what} that does not decode: {e}"))
    };
    let executions = raw
        .executions
        .into_iter()
        .map(|b| pb::Execution::decode(b).map_err(|e| bad("row", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let forms = raw
        .forms
        .into_iter()
        .map(|b| pb::PauseForm::decode(b).map_err(|e| bad("pause form", e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        executions,
        forms,
        last: raw.next_page_token.is_empty(),
    })
}

/// Lists every page of `req` (its `page_token` is the first page's) into `pages`, in order,
/// each page's request sent before the previous page is decoded. Stops after the last page,
/// at the first error (sent as `Err`), or when the receiver is gone.
pub async fn list_all<T>(svc: T, req: pb::ListExecutionsRequest, pages: mpsc::Sender<Result<Page, tonic::Status>>)
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

    /// The raw reading of an answer finds the same rows, forms and token as the generated type.
    #[test]
    fn a_raw_answer_decodes_to_the_generated_answer() {
        let answer = pb::ListExecutionsResponse {
            executions: vec![
                pb::Execution {
                    id: "a".into(),
                    state: "PAUSED".into(),
                    labels: [("team".to_string(), "hr".to_string())].into(),
                    pauses: vec![pb::PauseInfo {
                        task_id: "gate".into(),
                        form_key: "k1".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                pb::Execution {
                    id: "b".into(),
                    ..Default::default()
                },
            ],
            next_page_token: "PAUSED\u{0}0001\u{0}b".into(),
            total: 7,
            forms: vec![pb::PauseForm {
                form_key: "k1".into(),
                on_resume: vec![pb::InputSpec {
                    id: "ok".into(),
                    ..Default::default()
                }],
            }],
        };
        let raw = RawListResponse::decode(answer.encode_to_vec().as_slice()).expect("raw");
        assert_eq!(raw.next_page_token, answer.next_page_token);
        let page = decode(raw).expect("page");
        assert_eq!(page.executions, answer.executions);
        assert_eq!(page.forms, answer.forms);
        assert!(!page.last);
        let last =
            RawListResponse::decode(pb::ListExecutionsResponse::default().encode_to_vec().as_slice()).expect("raw");
        assert!(decode(last).expect("page").last);
        let broken = RawListResponse {
            executions: vec![Bytes::from_static(&[0x0a, 0x05, b'a'])],
            ..Default::default()
        };
        assert!(decode(broken).is_err());
    }
}
