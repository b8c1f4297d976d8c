//! Pause timers: expiry, timeout, reminders and escalations.

use super::*;

impl WriterLoop {
    pub(super) fn fire_timer(
        &self,
        w: &mut Writer,
        t: &TimerKey,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let mut exec = self.load(w, &t.execution_id)?;
        if t.kind == timer_kind::NEW_EXECUTION {
            return self.retry_in_new_execution(w, exec, t.due_ms, batch, follow);
        }
        if t.kind == timer_kind::FLOW_SLA {
            // The step finds the MAX_DURATION exceeded (a finished execution is left as it is).
            if exec.state.is_terminal() {
                return Ok(exec);
            }
            let flow = self.flow_of(&exec)?;
            return self.step_and_store(w, exec, &flow, batch, follow);
        }
        let Some(idx) = exec.task_runs.iter().position(|r| r.id == t.task_run_id) else {
            return Ok(exec);
        };
        if t.kind == timer_kind::SLEEP {
            return self.wake(w, exec, idx, t.due_ms, batch, follow);
        }
        if t.kind == timer_kind::RETRY {
            return self.retry_attempt(w, exec, idx, t.due_ms, batch, follow);
        }
        if t.kind == timer_kind::WAIT_FOR {
            return self.next_iteration(w, exec, idx, t.due_ms, batch, follow);
        }
        // A timer only acts on the pause it was set for, and only while that pause still waits:
        // a stale timer must never resume a pause someone already decided (Kestra #9319, #18507).
        let run = &exec.task_runs[idx];
        let current = run.pause.as_ref().is_some_and(|p| match t.kind.as_str() {
            timer_kind::EXPIRE => p.expires_ms == Some(t.due_ms),
            timer_kind::TIMEOUT => p.timeout_ms == Some(t.due_ms),
            timer_kind::REMINDER => p.next_reminder_ms == Some(t.due_ms),
            timer_kind::ESCALATE => p.next_escalation_ms == Some(t.due_ms),
            timer_kind::SLA => p.sla_due_ms == Some(t.due_ms) && p.sla_breached_ms.is_none(),
            k if k == super::stale::KIND => p.next_stale_check_ms == Some(t.due_ms),
            _ => false,
        });
        if run.state != State::Paused || !current || exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        let Some(task) = flow.find_task(&run.task_id) else {
            return Err(EngineError::NotFound(format!(
                "task `{}` is not in the flow any more",
                run.task_id
            )));
        };
        let TaskKind::Pause(pause) = &task.kind else {
            return Ok(exec);
        };
        if t.kind == timer_kind::SLA {
            return self.sla_breached(w, exec, idx, pause, now, batch, follow);
        }
        if t.kind == super::stale::KIND {
            return self.stale_timer(w, exec, idx, batch, follow);
        }
        if t.kind == timer_kind::REMINDER || t.kind == timer_kind::ESCALATE {
            return self.nudge(w, exec, idx, task, pause, &t.kind, now, batch, follow);
        }
        let mut fx = Effects::default();
        let (state, outputs, message) = crate::engine::resume::on_timer(pause, &t.kind, now);
        if let Some(message) = message {
            let (run_id, task_id) = (exec.task_runs[idx].id.clone(), exec.task_runs[idx].task_id.clone());
            let level = if state == State::Failed { "ERROR" } else { "INFO" };
            append_task_log(w, &mut exec, (&run_id, &task_id), level, message, now)?;
        }
        crate::engine::resume::end_pause(&mut exec, idx, state, outputs, now, &mut fx);
        crate::engine::resume::continue_into_tasks(&flow, &mut exec, idx, now);
        for d in fx.timers_del {
            w.delete_timer(&d)?;
        }
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    /// A reminder or escalation fell due on a gate that still waits: run its tasks, escalate the
    /// assignment, and schedule the next one counted from now, so downtime never causes a burst.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nudge(
        &self,
        w: &mut Writer,
        mut exec: Execution,
        idx: usize,
        task: &crate::flow::Task,
        pause: &crate::flow::PauseTask,
        kind: &str,
        now: i64,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let flow = self.flow_of(&exec)?;
        let since = exec.task_runs[idx].pause.as_ref().map(|p| p.since_ms).unwrap_or(now);
        let waiting_for =
            crate::flow::duration::format_iso8601(std::time::Duration::from_millis((now - since).max(0) as u64));
        let run_id = exec.task_runs[idx].id.clone();
        let mut fx = Effects::default();
        let mut side: Option<(&[crate::flow::Task], &str, Map<String, Value>)> = None;
        let mut log_message = String::new();
        if kind == timer_kind::REMINDER {
            let Some(r) = &pause.reminders else { return Ok(exec) };
            let state = exec.task_runs[idx].pause.get_or_insert_with(Default::default);
            state.reminder_count += 1;
            let count = state.reminder_count;
            state.next_reminder_ms = None;
            if r.max_count.is_none_or(|max| count < max)
                && let Ok(every) = crate::flow::duration::parse_iso8601(&r.every)
            {
                let due = now + every.as_millis() as i64;
                state.next_reminder_ms = Some(due);
                fx.timers_add.push(TimerKey {
                    due_ms: due,
                    execution_id: exec.id.clone(),
                    task_run_id: run_id.clone(),
                    kind: kind.into(),
                });
            }
            log_message = format!("still waiting after {waiting_for}: sending reminder {count}");
            let mut extras = Map::new();
            extras.insert("reminder".into(), serde_json::json!({"count": count}));
            extras.insert("waitingFor".into(), Value::String(waiting_for.clone()));
            side = Some((&r.tasks, "reminder", extras));
        } else if let Some(human) = &pause.human {
            let state = exec.task_runs[idx].pause.get_or_insert_with(Default::default);
            let level = state.escalation_level as usize;
            if let Some(spec) = human.escalation.get(level) {
                if spec.mode == crate::flow::EscalationMode::Replace {
                    state.users.clear();
                    state.groups.clear();
                }
                for u in &spec.assignment.users {
                    if !state.users.contains(u) {
                        state.users.push(u.clone());
                    }
                    state.escalated_to.push(u.clone());
                }
                for g in &spec.assignment.groups {
                    if !state.groups.contains(g) {
                        state.groups.push(g.clone());
                    }
                    state.escalated_to.push(g.clone());
                }
                state.escalation_level += 1;
                state.next_escalation_ms = None;
                // Later levels count from the start of the pause; one already past fires right away.
                if let Some(next) = human.escalation.get(level + 1)
                    && let Ok(after) = crate::flow::duration::parse_iso8601(&next.after)
                {
                    let due = (since + after.as_millis() as i64).max(now);
                    state.next_escalation_ms = Some(due);
                    fx.timers_add.push(TimerKey {
                        due_ms: due,
                        execution_id: exec.id.clone(),
                        task_run_id: run_id.clone(),
                        kind: kind.into(),
                    });
                }
                log_message = format!(
                    "escalation {}: no decision after {waiting_for}; may now decide: users [{}] groups [{}]",
                    level + 1,
                    state.users.join(", "),
                    state.groups.join(", ")
                );
                let mut extras = Map::new();
                extras.insert("escalation".into(), serde_json::json!({"level": level + 1, "mode": if spec.mode == crate::flow::EscalationMode::Replace { "REPLACE" } else { "ADD" }}));
                extras.insert("waitingFor".into(), Value::String(waiting_for.clone()));
                side = Some((&spec.tasks, "escalation", extras));
            }
        }
        if kind == timer_kind::ESCALATE && !log_message.is_empty() {
            let task_id = exec.task_runs[idx].task_id.clone();
            audit_exec(
                w,
                &exec,
                "tollgated",
                "escalate",
                &task_id,
                Value::Null,
                "",
                &log_message,
            )?;
        }
        let task_id = exec.task_runs[idx].task_id.clone();
        append_task_log(w, &mut exec, (&run_id, &task_id), "INFO", log_message, now)?;
        exec.updated_ms = now;
        if let Some((tasks, purpose, extras)) = side {
            // Delegates are told too: `assignees.delegates` lists who decides for an assignee now.
            let delegates = super::delegates_in(w, now);
            exec.remember_secret_values();
            let lookup = |ns: &str, id: &str| self.flows.get(ns, id, 0).ok().map(|(h, f, _)| (h.revision, f));
            let services = self.step_services(w, &flow, &exec);
            // Side tasks are Log and notification tasks only: no log.Fetch among them.
            let no_logs = |_: &str| Vec::new();
            let env = StepEnv {
                renderer: &self.renderer,
                services: &services,
                flow_lookup: &lookup,
                stored_logs: &no_logs,
                other_logs: &crate::engine::advance::no_other_logs,
                delegates: &delegates,
            };
            let mut stepper = Stepper {
                flow: &flow,
                exec: &mut exec,
                now,
                fx: &mut fx,
                env: &env,
            };
            stepper.run_side_tasks(idx, task, tasks, purpose, extras);
        }
        self.store_with_effects(w, &exec, fx, batch, follow)?;
        Ok(exec)
    }

    /// A Sleep's duration elapsed: its run succeeds and the execution goes on, if the run still
    /// sleeps on this very timer (a killed execution or a stale timer does nothing).
    fn wake(
        &self,
        w: &mut Writer,
        mut exec: Execution,
        idx: usize,
        due_ms: i64,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let run = &exec.task_runs[idx];
        let sleeping = run.pause.as_ref().is_some_and(|p| p.sleep_until_ms == Some(due_ms));
        if run.state != State::Running || !sleeping || exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let now = now_ms();
        let run = &exec.task_runs[idx];
        let timed_out = run.pause.as_ref().is_some_and(|p| p.timeout_ms == Some(due_ms));
        let (run_id, task_id, started_ms) = (run.id.clone(), run.task_id.clone(), run.started_ms);
        if timed_out {
            let ms = (due_ms - started_ms).max(0);
            // Sub-second timeouts keep their fraction (format_iso8601 counts whole seconds).
            let limit = if ms % 1000 == 0 {
                crate::flow::duration::format_iso8601(std::time::Duration::from_millis(ms as u64))
            } else {
                format!("PT{}S", ms as f64 / 1000.0)
            };
            let message = format!("Timeout after {limit}: task `{task_id}` exceeded its `timeout`");
            append_task_log(w, &mut exec, (&run_id, &task_id), "ERROR", message, now)?;
        }
        let state = if timed_out { State::Failed } else { State::Success };
        exec.task_runs[idx].set_state(state, now);
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    /// A retry's wait ended: the run goes back to CREATED and the walk starts its next attempt,
    /// if it still waits on this very timer (a killed execution or a stale timer does nothing).
    fn retry_attempt(
        &self,
        w: &mut Writer,
        mut exec: Execution,
        idx: usize,
        due_ms: i64,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let run = &exec.task_runs[idx];
        if run.state != State::Retrying || run.next_attempt_ms != Some(due_ms) || exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let run = &mut exec.task_runs[idx];
        run.next_attempt_ms = None;
        run.set_state(State::Created, now_ms());
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    /// A WaitFor's interval elapsed: its task runs of the last iteration are cleared (as Kestra
    /// does) and the walk runs them again as the next iteration.
    fn next_iteration(
        &self,
        w: &mut Writer,
        mut exec: Execution,
        idx: usize,
        due_ms: i64,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let run = &exec.task_runs[idx];
        if run.state != State::Running || run.next_check_ms != Some(due_ms) || exec.state.is_terminal() {
            return Ok(exec);
        }
        let flow = self.flow_of(&exec)?;
        let root = run.id.clone();
        let mut doomed = std::collections::HashSet::new();
        doomed.insert(root.clone());
        // Runs are stored parents first, so one pass finds every descendant.
        for r in &exec.task_runs {
            if r.parent_task_run_id.as_ref().is_some_and(|p| doomed.contains(p)) {
                doomed.insert(r.id.clone());
            }
        }
        doomed.remove(&root);
        exec.task_runs.retain(|r| !doomed.contains(&r.id));
        let Some(run) = exec.task_runs.iter_mut().find(|r| r.id == root) else {
            return Ok(exec);
        };
        run.next_check_ms = None;
        run.loop_iteration = Some(run.loop_iteration.unwrap_or(1) + 1);
        exec.updated_ms = now_ms();
        self.step_and_store(w, exec, &flow, batch, follow)
    }
}
