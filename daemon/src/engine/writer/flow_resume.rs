//! FlowResume: a Resume task resumes a paused execution, decided in the same transaction as the
//! task run that asked, through the same checks (and audit records) as a person's resume, with
//! the flow as the actor.

use super::*;

impl WriterLoop {
    pub(super) fn flow_resume(
        &self,
        w: &mut Writer,
        r: advance::FlowResume,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let source = self.load(w, &r.execution_id)?;
        // Audited as the flow: `flow:<namespace>.<flowId>` (no user acts here).
        let actor = Actor::new(format!("flow:{}.{}", source.namespace, source.flow_id), vec![]);
        let task_id = source
            .run(&r.task_run_id)
            .map(|run| run.task_id.clone())
            .unwrap_or_default();
        let reason = format!("Resume task `{task_id}` of execution {}", source.id);
        let select = PauseSelector::default();
        let outcome: std::result::Result<String, String> = match self.load(w, &r.target) {
            Err(EngineError::NotFound(_)) => Err(format!("No execution found for execution id {}", r.target)),
            Err(e) => return Err(e),
            Ok(target) if target.namespace != source.namespace => {
                // Namespaces are Tollgate's permission boundary: a flow acts in its own only.
                let refusal = format!(
                    "a flow may only resume executions of its own namespace `{}`; execution {} is in `{}`",
                    source.namespace, target.id, target.namespace
                );
                match audit_refused_decision(w, &target, &select, &actor, "resume", &reason, refusal) {
                    EngineError::Store(e) => return Err(EngineError::Store(e)),
                    e => Err(e.to_string()),
                }
            }
            Ok(target) => match &r.flow {
                Some((ns, id)) if target.namespace != *ns || target.flow_id != *id => Err(format!(
                    "execution {} is not an execution of flow {ns}.{id} (it is of {}.{})",
                    target.id, target.namespace, target.flow_id
                )),
                _ => match self.resume(w, &r.target, &select, &r.inputs, &actor, &reason, batch, follow) {
                    Ok(_) => Ok(format!("resumed execution {}", r.target)),
                    Err(EngineError::Store(e)) => return Err(EngineError::Store(e)),
                    Err(e) => Err(format!("cannot resume execution {}: {e}", r.target)),
                },
            },
        };
        let outcome = JobOutcome::applied(outcome);
        self.job_done(w, &r.execution_id, &r.task_run_id, r.attempt, outcome, batch, follow)
    }
}
