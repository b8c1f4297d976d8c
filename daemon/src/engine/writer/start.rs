//! Start: a new execution, audited and stepped.

use super::*;

impl WriterLoop {
    pub(super) fn start(
        &self,
        w: &mut Writer,
        exec: Execution,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let flow = self.flow_of(&exec)?;
        let values = Value::Object(masked(&exec.inputs, &exec.secret_inputs));
        audit_exec(w, &exec, &exec.started_by.clone(), "start", "", values, "", "OK")?;
        self.step_and_store(w, exec, &flow, batch, follow)
    }

    /// Start of an execution a trigger made, audited with where it came from (`values`).
    pub(super) fn start_with(
        &self,
        w: &mut Writer,
        exec: Execution,
        origin: Value,
        batch: &mut Batch,
        follow: &mut VecDeque<Command>,
    ) -> Result<Execution> {
        let flow = self.flow_of(&exec)?;
        let mut values = masked(&exec.inputs, &exec.secret_inputs);
        if let Value::Object(o) = origin {
            values.extend(o);
        }
        audit_exec(
            w,
            &exec,
            &exec.started_by.clone(),
            "start",
            "",
            Value::Object(values),
            "",
            "OK",
        )?;
        self.step_and_store(w, exec, &flow, batch, follow)
    }
}
