//! Kestra plugin types Tollgate knows of and deliberately does not run, each with the reason and
//! what to use instead, so a refused flow says why rather than "unknown type".

/// Type names (or package prefixes ending in `.`) with the reason they are refused.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "io.kestra.plugin.core.flow.Template",
        "templates were removed from Kestra; use a Subflow",
    ),
    (
        "io.kestra.core.tasks.flows.Template",
        "templates were removed from Kestra; use a Subflow",
    ),
    (
        "io.kestra.plugin.core.storage.",
        "of Kestra's storage tasks only LocalFiles is supported (files of the internal storage are read with `read()` and moved with LocalFiles or a script's `inputFiles`/`outputFiles`)",
    ),
    (
        "io.kestra.core.tasks.storages.",
        "of Kestra's storage tasks only LocalFiles is supported (files of the internal storage are read with `read()` and moved with LocalFiles or a script's `inputFiles`/`outputFiles`)",
    ),
    (
        "io.kestra.plugin.core.namespace.",
        "Tollgate has no namespace files; use `inputFiles` on a script task",
    ),
    (
        "io.kestra.plugin.core.http.Download",
        "it is not supported; use io.kestra.plugin.core.http.Request (a script task's `outputFiles` can store what it downloads)",
    ),
    (
        "io.kestra.plugin.core.execution.PurgeExecutions",
        "Tollgate's retention is set on the daemon (`tollgated serve --retention`), not by a flow",
    ),
    (
        "io.kestra.plugin.core.log.PurgeLogs",
        "Tollgate's retention is set on the daemon (`tollgated serve --retention`), not by a flow",
    ),
];

/// Why `type_name` is refused, when it is a type Tollgate knows it does not run.
pub fn reason(type_name: &str) -> Option<&'static str> {
    UNSUPPORTED
        .iter()
        .find(|(t, _)| {
            if t.ends_with('.') {
                type_name.starts_with(t)
            } else {
                type_name == *t
            }
        })
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_and_package_prefixes_are_known() {
        assert!(reason("io.kestra.plugin.core.storage.Split").is_some_and(|r| r.contains("only LocalFiles")));
        assert!(reason("io.kestra.plugin.core.flow.ForEachItem").is_none());
        assert!(reason("io.kestra.plugin.core.flow.ForEach").is_none());
        assert!(reason("io.kestra.plugin.core.storageX.Split").is_none());
    }
}
