//! Stale approvals: a HumanTask's `staleWhen` expressions are rendered and recorded with each
//! partial approval. They are rendered again at every new approval and by a periodic check
//! (a durable timer, armed while partial approvals are held); when any value differs from the
//! one recorded with an approval, every partial approval is discarded, the reason is logged and
//! audited, and the `onStale` tasks run to tell the approvers.

use super::*;

/// Timer kind of the periodic check.
pub const KIND: &str = "stale";

/// How often the periodic check runs (`TOLLGATE_STALE_CHECK_INTERVAL`, ISO-8601, default PT1M).
pub fn interval_ms() -> i64 {
    std::env::var("TOLLGATE_STALE_CHECK_INTERVAL")
        .ok()
        .and_then(|v| crate::flow::duration::parse_iso8601(&v).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(60_000)
        .max(1000)
}

impl WriterLoop {
    /// The current `staleWhen` values of the HumanTask at `idx` (empty when it declares none).
    /// A value that cannot be rendered counts as its error message, so it is stale too once it
    /// renders again.
    pub(super) fn stale_values(&self, flow: &Flow, exec: &Execution, idx: usize) -> Vec<String> {
        let run = &exec.task_runs[idx];
        let Some(task) = flow.find_task(&run.task_id) else {
            return vec![];
        };
        let TaskKind::Pause(p) = &task.kind else { return vec![] };
        let Some(h) = &p.human else { return vec![] };
        if h.stale_when.is_empty() {
            return vec![];
        }
        let vars = crate::engine::context::vars(flow, exec, Some(run), Some(task));
        h.stale_when
            .iter()
            .map(|e| {
                match self
                    .renderer
                    .render(e, &vars, self.services.as_ref(), &exec.namespace, &exec.id)
                {
                    Ok(r) => crate::masking::mask(&r.text, &r.secrets),
                    Err(err) => format!("(cannot render: {err})"),
                }
            })
            .collect()
    }

    /// Discards the partial approvals of the pause at `idx` if a `staleWhen` value changed since
    /// they were given; stores the execution when it did. Returns whether it did.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn discard_if_stale(
        &self,
        w: &mut Writer,
        exec: &mut Execution,
        flow: &Flow,
        idx: usize,
        now: i64,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<bool> {
        let current = self.stale_values(flow, exec, idx);
        if current.is_empty() {
            return Ok(false);
        }
        let run = &exec.task_runs[idx];
        let Some(task) = flow.find_task(&run.task_id) else {
            return Ok(false);
        };
        let TaskKind::Pause(pause) = &task.kind else {
            return Ok(false);
        };
        let Some(human) = &pause.human else { return Ok(false) };
        let approvals = run.pause.as_ref().map(|p| p.approvals.clone()).unwrap_or_default();
        let changed: Vec<String> = approvals
            .iter()
            .flat_map(|a| {
                human.stale_when.iter().enumerate().filter_map(|(i, expr)| {
                    let then = a.stale_values.get(i).cloned().unwrap_or_default();
                    let now = current.get(i).cloned().unwrap_or_default();
                    (then != now).then(|| format!("`{expr}` was `{then}` when {} approved, now `{now}`", a.by))
                })
            })
            .collect();
        if changed.is_empty() {
            return Ok(false);
        }
        let discarded: Vec<String> = approvals
            .iter()
            .map(|a| match a.on_behalf_of.as_str() {
                "" => a.by.clone(),
                other => format!("{} for {other}", a.by),
            })
            .collect();
        let reason = format!("staleWhen changed: {}", changed.join("; "));
        let task_id = run.task_id.clone();
        let run_id = run.id.clone();
        let state = exec.task_runs[idx].pause.get_or_insert_with(Default::default);
        state.approvals.clear();
        let mut fx = Effects::default();
        if let Some(due) = state.next_stale_check_ms.take() {
            fx.timers_del.push(TimerKey {
                due_ms: due,
                execution_id: exec.id.clone(),
                task_run_id: run_id.clone(),
                kind: KIND.into(),
            });
        }
        let message = format!(
            "partial approvals by {} discarded as stale ({reason}); approve again",
            discarded.join(", ")
        );
        audit_exec(
            w,
            exec,
            "tollgated",
            "approvals.stale",
            &task_id,
            serde_json::json!({"discarded": discarded, "values": current}),
            &reason,
            "OK: partial approvals discarded",
        )?;
        append_task_log(w, exec, (&run_id, &task_id), "WARN", message, now)?;
        exec.updated_ms = now;
        if !human.on_stale.is_empty() {
            exec.remember_secret_values();
            let lookup = |ns: &str, id: &str| self.flows.get(ns, id, 0).ok().map(|(h, f, _)| (h.revision, f));
            // `onStale` holds Log and notification tasks only: no log.Fetch among them.
            let no_logs = |_: &str| Vec::new();
            let delegates = super::delegates_in(w, now);
            let env = StepEnv {
                renderer: &self.renderer,
                services: self.services.as_ref(),
                flow_lookup: &lookup,
                stored_logs: &no_logs,
                other_logs: &crate::engine::advance::no_other_logs,
                delegates: &delegates,
            };
            let mut extras = Map::new();
            extras.insert(
                "stale".into(),
                serde_json::json!({"discarded": discarded, "reason": reason}),
            );
            let mut stepper = Stepper {
                flow,
                exec,
                now,
                fx: &mut fx,
                env: &env,
            };
            stepper.run_side_tasks(idx, task, &human.on_stale, "stale", extras);
        }
        self.store_with_effects(w, exec, fx, batch, follow)?;
        Ok(true)
    }

    /// The periodic check fell due: discard stale approvals, or look again later while any are held.
    pub(super) fn stale_timer(
        &self,
        w: &mut Writer,
        mut exec: Execution,
        idx: usize,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        if let Some(p) = exec.task_runs[idx].pause.as_mut() {
            p.next_stale_check_ms = None;
        }
        let discarded = self.discard_if_stale(w, &mut exec, &flow, idx, now, batch, follow)?;
        let mut fx = Effects::default();
        if !discarded {
            arm(&mut exec, idx, now, &mut fx);
        }
        self.store_with_effects(w, &exec, fx, batch, follow)?;
        Ok(exec)
    }
}

/// Arms the periodic check of the pause at `idx` if it holds partial approvals and none is armed.
pub(super) fn arm(exec: &mut Execution, idx: usize, now: i64, fx: &mut Effects) {
    let exec_id = exec.id.clone();
    let run = &mut exec.task_runs[idx];
    let run_id = run.id.clone();
    let Some(p) = run.pause.as_mut() else { return };
    if p.approvals.is_empty()
        || p.next_stale_check_ms.is_some()
        || p.approvals.iter().all(|a| a.stale_values.is_empty())
    {
        return;
    }
    let due = now + interval_ms();
    p.next_stale_check_ms = Some(due);
    fx.timers_add.push(TimerKey {
        due_ms: due,
        execution_id: exec_id,
        task_run_id: run_id,
        kind: KIND.into(),
    });
}
