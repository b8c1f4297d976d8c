//! Flow and Schedule triggers: the executions the daemon starts by itself.

use super::*;

impl WriterLoop {
    /// Starts the executions of every flow whose Flow trigger matches `exec` entering its state;
    /// MultipleCondition windows are updated in the same transaction.
    pub(super) fn fire_flow_triggers(
        &self,
        w: &mut Writer,
        exec: &Execution,
        follow: &mut VecDeque<Command>,
    ) -> Result<()> {
        let now = now_ms();
        for (revision, flow) in self.flows.flows_with_flow_triggers().iter() {
            if flow.disabled {
                continue;
            }
            for t in &flow.triggers {
                let crate::flow::TriggerKind::Flow(ft) = &t.kind else {
                    continue;
                };
                if !crate::engine::flow_trigger::listens(ft, exec.state) {
                    continue;
                }
                if w.trigger_switched_off(&flow.namespace, &flow.id, &t.id)? {
                    continue;
                }
                // Templates of the listener see the triggering execution (Kestra's run context of
                // the listening flow and the upstream execution).
                let mut vars = crate::engine::context::vars(flow, exec, None, None);
                let mut render = |text: &str| -> std::result::Result<String, String> {
                    self.renderer
                        .render(text, &vars, self.services.as_ref(), &flow.namespace, &exec.id)
                        .map(|r| r.text)
                        .map_err(|e| e.to_string())
                };
                let mut windows = Windows {
                    w,
                    prefix: (&flow.namespace, &flow.id, &t.id),
                    failed: None,
                };
                let fires = crate::engine::flow_trigger::evaluate(
                    ft,
                    (&flow.namespace, &flow.id),
                    exec,
                    exec.state,
                    now,
                    &mut render,
                    &mut windows,
                );
                if let Some(e) = windows.failed {
                    return Err(e.into());
                }
                match fires {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(
                            flow = %format!("{}.{}", flow.namespace, flow.id), trigger = %t.id, error = %e,
                            "Flow trigger conditions could not be evaluated"
                        );
                        continue;
                    }
                }
                let trigger = crate::engine::flow_trigger::context(exec, exec.state);
                vars["trigger"] = trigger.clone();
                let started = self.triggered_execution(flow, *revision, &t.id, &ft.inputs, &vars, trigger, now);
                match started {
                    Ok(new) => store_started(w, &new, ("triggeredBy", exec.id.clone().into()), follow)?,
                    Err(e) => tracing::warn!(
                        flow = %format!("{}.{}", flow.namespace, flow.id), trigger = %t.id, error = %e,
                        "Flow trigger matched but its execution was not created"
                    ),
                }
            }
        }
        Ok(())
    }

    /// A call to a Webhook trigger: finds the trigger whose rendered key equals `call.key`
    /// (compared in constant time), builds `trigger.body/headers/parameters`, checks the
    /// trigger's conditions and starts the execution, audited with the origin `webhook`.
    /// `Ok(None)`: the key was right but a condition did not hold (Kestra answers 204).
    pub(super) fn webhook(
        &self,
        w: &mut Writer,
        call: &WebhookCall,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Option<Execution>> {
        let not_found = |what: &str| EngineError::NotFound(what.to_string());
        let (head, flow, _) = self
            .flows
            .get(&call.namespace, &call.flow_id, 0)
            .map_err(|_| not_found("Flow not found"))?;
        let key_vars = serde_json::json!({
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": head.revision},
        });
        let mut found = None;
        for t in &flow.triggers {
            let crate::flow::TriggerKind::Webhook(wh) = &t.kind else {
                continue;
            };
            if t.disabled || w.trigger_switched_off(&flow.namespace, &flow.id, &t.id)? {
                continue;
            }
            match self
                .renderer
                .render(&wh.key, &key_vars, self.services.as_ref(), &flow.namespace, "")
            {
                Ok(r) => {
                    if same_key(r.text.trim(), &call.key) {
                        found = Some((t, wh));
                        break;
                    }
                }
                // Never the key itself in the log: it is the credential.
                Err(e) => tracing::warn!(
                    flow = %format!("{}.{}", flow.namespace, flow.id), trigger = %t.id, error = %e,
                    "cannot render a webhook key; that webhook answers nothing"
                ),
            }
        }
        let Some((t, wh)) = found else {
            return Err(not_found("Webhook not found"));
        };
        if flow.disabled {
            return Err(EngineError::FailedPrecondition(format!(
                "flow `{}.{}` is disabled",
                flow.namespace, flow.id
            )));
        }
        let now = now_ms();
        let trigger = crate::engine::flow_trigger::webhook_context(&call.body, &call.headers, &call.parameters);
        let vars = serde_json::json!({
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": head.revision},
            "trigger": trigger,
        });
        let new = self
            .triggered_execution(&flow, head.revision, &t.id, &wh.inputs, &vars, trigger, now)
            .map_err(EngineError::InvalidArgument)?;
        let holds = self
            .conditions_hold(&flow, &new, &wh.conditions)
            .map_err(|e| EngineError::InvalidArgument(format!("webhook condition: {e}")))?;
        if !holds {
            return Ok(None);
        }
        let values = serde_json::json!({"origin": "webhook", "trigger": t.id});
        self.start_with(w, new, values, batch, follow).map(Some)
    }
    /// A new execution of `flow` started by trigger `trigger_id`, with rendered and typed inputs.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn triggered_execution(
        &self,
        flow: &Flow,
        revision: u32,
        trigger_id: &str,
        inputs: &BTreeMap<String, Value>,
        vars: &Value,
        trigger: Value,
        now: i64,
    ) -> std::result::Result<Execution, String> {
        let mut raw = BTreeMap::new();
        for (k, v) in inputs {
            let text = match v {
                Value::String(s) => {
                    self.renderer
                        .render(s, vars, self.services.as_ref(), &flow.namespace, "")
                        .map_err(|e| format!("input `{k}`: {e}"))?
                        .text
                }
                other => other.to_string(),
            };
            raw.insert(k.clone(), text);
        }
        let join = |errs: Vec<crate::inputs::InputError>| {
            errs.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ")
        };
        // SELECT/MULTISELECT `expression` values are rendered as for a start by hand.
        let render = crate::engine::resume::expression_renderer(&self.renderer, self.services.as_ref(), flow, None);
        let defs = crate::inputs::resolve_expressions(&flow.inputs, &render).map_err(join)?;
        let typed = crate::inputs::coerce(&defs, &raw).map_err(join)?;
        let actor = crate::triggers::trigger_actor(&flow.namespace, &flow.id, trigger_id);
        Ok(advance::new_execution(
            flow,
            revision,
            typed,
            BTreeMap::new(),
            &actor,
            now,
            None,
            Some(trigger),
        ))
    }

    /// A Schedule trigger fell due: start its flow once, then register the next fire time.
    pub(super) fn fire_schedule(
        &self,
        w: &mut Writer,
        t: &TimerKey,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<()> {
        let Some((ns, flow_id, trigger_id)) = due_trigger(w, t)? else {
            return Ok(());
        };
        let (head, flow, _) = self.flows.get(ns, flow_id, 0)?;
        let Some((trigger, sched)) = flow.triggers.iter().find_map(|tr| match &tr.kind {
            crate::flow::TriggerKind::Schedule(s) if tr.id == trigger_id && !tr.disabled => Some((tr, s)),
            _ => None,
        }) else {
            return Ok(());
        };
        let now = now_ms();
        // Fires missed while the daemon was down collapse into this one: the next is after now.
        let next = crate::triggers::schedule::next_fire(
            &sched.cron,
            sched.with_seconds,
            sched.timezone.as_deref(),
            now.max(t.due_ms),
        )
        .map_err(EngineError::InvalidArgument)?;
        let context = serde_json::json!({
            "date": crate::engine::context::iso_ms(t.due_ms),
            "next": crate::engine::context::iso_ms(next),
        });
        let vars = serde_json::json!({ "trigger": context });
        // `recoverMissedSchedules: NONE`: a fire that fell due while the daemon was down (more
        // than a minute late) is skipped; the next one is registered as usual.
        let missed = now - t.due_ms > 60_000;
        let skip = missed && sched.recover_missed_schedules == Some(crate::flow::RecoverMissed::None);
        // A trigger switched off (Toggle, `tollgate trigger disable`) keeps its next fire time
        // registered and creates nothing, so switching it on again needs no new schedule.
        let switched_off = w.trigger_switched_off(ns, flow_id, trigger_id)?;
        let made = if switched_off {
            Err(String::new())
        } else if skip {
            Err("skipped: missed while the daemon was down (recoverMissedSchedules: NONE)".to_string())
        } else {
            self.triggered_execution(
                &flow,
                head.revision,
                &trigger.id,
                &sched.inputs,
                &vars,
                context.clone(),
                now,
            )
        };
        let made = made.and_then(|new| match self.conditions_hold(&flow, &new, &sched.conditions)? {
            true => Ok(new),
            false => Err("skipped: its conditions do not hold".to_string()),
        });
        match made {
            Ok(new) => store_started(w, &new, ("schedule", trigger_id.into()), follow)?,
            Err(_) if switched_off => {}
            Err(e) => {
                tracing::warn!(flow = %format!("{ns}.{flow_id}"), trigger = %trigger_id, error = %e, "scheduled execution not created")
            }
        }
        w.put_schedule(ns, flow_id, trigger_id, next)?;
        w.put_timer(&crate::engine::flows::schedule_timer(ns, flow_id, trigger_id, next))?;
        batch.timers_added = true;
        Ok(())
    }
}

/// The (namespace, flow id, trigger id) a Schedule or HTTP-poll timer is for, while it is
/// still the registered one (applying the flow again replaces it: the old timer is stale).
pub(super) fn due_trigger<'t>(w: &Writer, t: &'t TimerKey) -> Result<Option<(&'t str, &'t str, &'t str)>> {
    let Some((ns, flow_id)) = t.execution_id.split_once('/') else {
        return Ok(None);
    };
    let trigger_id = t.task_run_id.as_str();
    if w.schedule_due(ns, flow_id, trigger_id)? != Some(t.due_ms) {
        return Ok(None);
    }
    Ok(Some((ns, flow_id, trigger_id)))
}

impl WriterLoop {
    /// Whether a trigger's `conditions` hold for the execution it would start (rendered with
    /// that execution's context).
    pub(super) fn conditions_hold(
        &self,
        flow: &Flow,
        new: &Execution,
        conditions: &[crate::flow::Condition],
    ) -> std::result::Result<bool, String> {
        let ctx = crate::engine::context::vars(flow, new, None, None);
        let mut render = |text: &str| -> std::result::Result<String, String> {
            self.renderer
                .render(text, &ctx, self.services.as_ref(), &flow.namespace, &new.id)
                .map(|r| r.text)
                .map_err(|e| e.to_string())
        };
        crate::engine::flow_trigger::all_hold(conditions, new, &mut render)
    }
}

/// A webhook request, as the REST layer read it.
#[derive(Debug, Clone)]
pub struct WebhookCall {
    pub namespace: String,
    pub flow_id: String,
    pub key: String,
    pub body: String,
    pub headers: BTreeMap<String, Vec<String>>,
    pub parameters: BTreeMap<String, Vec<String>>,
}

/// Compares two keys in time independent of where they differ (and of their lengths: digests).
fn same_key(expected: &str, given: &str) -> bool {
    use sha2::Digest;
    use subtle::ConstantTimeEq;
    let a = sha2::Sha256::digest(expected.as_bytes());
    let b = sha2::Sha256::digest(given.as_bytes());
    !expected.is_empty() && bool::from(a.as_slice().ct_eq(b.as_slice()))
}

/// A trigger's MultipleCondition windows in the writer's transaction.
struct Windows<'a> {
    w: &'a mut Writer,
    prefix: (&'a str, &'a str, &'a str),
    /// A storage error aborts the transaction; it is kept here, out of the condition's errors.
    failed: Option<StoreError>,
}

impl Windows<'_> {
    fn fail(&mut self, e: StoreError) -> String {
        let text = e.to_string();
        self.failed.get_or_insert(e);
        text
    }

    fn key(&self, condition: &str) -> String {
        crate::engine::flow_trigger::window_key(self.prefix.0, self.prefix.1, self.prefix.2, condition)
    }
}

impl crate::engine::flow_trigger::WindowStore for Windows<'_> {
    fn get_window(
        &mut self,
        condition: &str,
    ) -> std::result::Result<Option<crate::engine::flow_trigger::ConditionWindow>, String> {
        let bytes = self
            .w
            .condition_window(&self.key(condition))
            .map_err(|e| self.fail(e))?;
        // A record that no longer decodes starts a fresh window rather than blocking the trigger.
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    fn put_window(
        &mut self,
        condition: &str,
        win: &crate::engine::flow_trigger::ConditionWindow,
    ) -> std::result::Result<(), String> {
        let bytes = serde_json::to_vec(win).map_err(|e| e.to_string())?;
        let key = self.key(condition);
        self.w.put_condition_window(&key, &bytes).map_err(|e| self.fail(e))
    }

    fn delete_window(&mut self, condition: &str) -> std::result::Result<(), String> {
        let key = self.key(condition);
        self.w.delete_condition_window(&key).map_err(|e| self.fail(e))
    }
}
