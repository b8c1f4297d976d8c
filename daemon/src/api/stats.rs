//! Stats service: decision times and the waiting chart for `tollgate stats`.

use tollgate_proto::v1::{self as pb, stats_server::Stats};
use tonic::{Request, Response, Status};

use super::ApiState;
use super::status::from_engine;

pub struct StatsService(pub ApiState);

#[tonic::async_trait]
impl Stats for StatsService {
    async fn get(&self, req: Request<pb::StatsRequest>) -> Result<Response<pb::StatsResponse>, Status> {
        let p = self.0.principal(&req).await?;
        let r = req.into_inner();
        let window = if r.window_ms <= 0 { 3_600_000 } else { r.window_ms };
        let buckets = if r.buckets == 0 { 30 } else { r.buckets };
        let s = self
            .0
            .ops
            .stats(&p, window, buckets, crate::engine::ids::now_ms())
            .await
            .map_err(from_engine)?;
        Ok(Response::new(pb::StatsResponse {
            executions_by_state: s.states.into_iter().collect(),
            waiting_now: s.waiting_now,
            waiting_series: s.waiting_series,
            series_start_ms: s.series_start_ms,
            bucket_ms: s.bucket_ms,
            decisions: s
                .decisions
                .into_iter()
                .map(|d| pb::DecisionStat {
                    dimension: d.dimension.as_str().to_string(),
                    name: d.name,
                    count: d.count,
                    mean_ms: d.mean_ms,
                    max_ms: d.max_ms,
                    p90_ms: d.p90_ms,
                })
                .collect(),
            sla_breaches: s.sla_breaches.into_iter().collect(),
        }))
    }
}
