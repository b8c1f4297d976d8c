//! Tails the logs of one execution into the UI channel; resumes after errors from the last
//! sequence number received. Runs until aborted (the logs view closed) or the execution ended.

use std::time::Duration;

use tokio::sync::mpsc;
use tollgate_proto::v1 as pb;

use super::backoff::Backoff;
use super::messages::{RpcError, Update};
use crate::client::Clients;

pub async fn run(clients: Clients, stream_id: u64, execution_id: String, tx: mpsc::Sender<Update>) {
    let mut client = clients.executions;
    let mut from_seq = 0;
    let mut backoff = Backoff::default();
    loop {
        let req = pb::TailLogsRequest {
            execution_id: execution_id.clone(),
            from_seq,
            follow: true,
        };
        let error: RpcError = match client.tail_logs(req).await {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(batch)) => {
                            backoff.reset();
                            if let Some(last) = batch.lines.last() {
                                from_seq = last.seq + 1;
                            }
                            let end = batch.end;
                            if tx
                                .send(Update::Logs {
                                    stream: stream_id,
                                    batch,
                                })
                                .await
                                .is_err()
                                || end
                            {
                                return;
                            }
                        }
                        Ok(None) => break RpcError::new(tonic::Code::Unavailable, "the log stream closed"),
                        Err(status) => break status.into(),
                    }
                }
            }
            Err(status) => status.into(),
        };
        // A missing execution or a permission problem will not fix itself: report once and stop.
        let permanent = matches!(
            error.code,
            tonic::Code::NotFound | tonic::Code::PermissionDenied | tonic::Code::InvalidArgument
        );
        if tx
            .send(Update::LogsError {
                stream: stream_id,
                error,
            })
            .await
            .is_err()
            || permanent
        {
            return;
        }
        tokio::time::sleep(backoff.next_delay().min(Duration::from_secs(5))).await;
    }
}
