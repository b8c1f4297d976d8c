//! HTTP triggers: a due poll registers the next one and hands the request to the poller (in the
//! same transaction, so a crash mid-request loses one poll, never the trigger); a response whose
//! condition held starts the flow, like a Schedule fire.

use super::*;
use crate::engine::http_poll::{HttpPoll, PollResponse};

impl WriterLoop {
    pub(super) fn fire_http_poll(&self, w: &mut Writer, t: &TimerKey, batch: &mut Batch) -> Result<()> {
        let Some((ns, flow_id, trigger_id)) = super::triggers::due_trigger(w, t)? else {
            return Ok(());
        };
        let (head, flow, _) = self.flows.get(ns, flow_id, 0)?;
        let Some(trigger) = flow.triggers.iter().find_map(|tr| match &tr.kind {
            crate::flow::TriggerKind::Http(h) if tr.id == trigger_id && !tr.disabled => Some(h),
            _ => None,
        }) else {
            return Ok(());
        };
        let interval = crate::flow::duration::parse_iso8601(&trigger.interval)
            .map_err(EngineError::InvalidArgument)?
            .as_millis() as i64;
        let next = now_ms().max(t.due_ms) + interval.max(1000);
        w.put_schedule(ns, flow_id, trigger_id, next)?;
        w.put_timer(&crate::engine::flows::poll_timer(ns, flow_id, trigger_id, next))?;
        batch.timers_added = true;
        if flow.disabled || w.trigger_switched_off(ns, flow_id, trigger_id)? {
            return Ok(());
        }
        batch.polls.push(HttpPoll {
            namespace: ns.to_string(),
            flow_id: flow_id.to_string(),
            revision: head.revision,
            trigger_id: trigger_id.to_string(),
            trigger: trigger.clone(),
        });
        Ok(())
    }

    /// A poll's condition held: start the flow with the response as `trigger`.
    pub(super) fn http_poll_fired(
        &self,
        w: &mut Writer,
        fired: &PollResponse,
        follow: &mut VecDeque<Command>,
    ) -> Result<()> {
        let poll = &fired.poll;
        let (head, flow, _) = self.flows.get(&poll.namespace, &poll.flow_id, 0)?;
        // Applied again, deleted, disabled or switched off while the request ran: nothing starts.
        let still = flow.triggers.iter().any(|t| {
            t.id == poll.trigger_id
                && !t.disabled
                && matches!(&t.kind, crate::flow::TriggerKind::Http(h) if *h == poll.trigger)
        });
        if !still || flow.disabled || w.trigger_switched_off(&poll.namespace, &poll.flow_id, &poll.trigger_id)? {
            return Ok(());
        }
        let now = now_ms();
        let vars = serde_json::json!({
            "flow": {"id": flow.id, "namespace": flow.namespace, "revision": head.revision},
            "trigger": fired.trigger,
        });
        let made = self
            .triggered_execution(
                &flow,
                head.revision,
                &poll.trigger_id,
                &poll.trigger.inputs,
                &vars,
                fired.trigger.clone(),
                now,
            )
            .and_then(
                |new| match self.conditions_hold(&flow, &new, &poll.trigger.conditions)? {
                    true => Ok(new),
                    false => Err("skipped: its conditions do not hold".to_string()),
                },
            );
        match made {
            Ok(new) => store_started(w, &new, ("httpTrigger", poll.trigger_id.clone().into()), follow)?,
            Err(e) => tracing::warn!(
                flow = %format!("{}.{}", poll.namespace, poll.flow_id), trigger = %poll.trigger_id, error = %e,
                "HTTP trigger fired but its execution was not created"
            ),
        }
        Ok(())
    }
}
