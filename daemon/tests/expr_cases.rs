//! Table of expression cases: every expression of the Kestra human-in-the-loop seed document with
//! null / undefined / boolean / string variants, then the Pebble constructs flows use.

use serde_json::{Value, json};
use tollgate_daemon::expr::{ExprError, ExprServices, NoServices, Renderer};

/// Services with one secret, one KV entry and a predictable link.
struct Fixed;

impl ExprServices for Fixed {
    fn secret(&self, _namespace: &str, name: &str) -> Option<String> {
        match name {
            "SLACK_HR_WEBHOOK" => Some("https://hooks.slack.test/T000/B000/XXXX".to_string()),
            "TEAMS_WEBHOOK" => Some("https://teams.test/hook".to_string()),
            "API_TOKEN" => Some("tok-123".to_string()),
            _ => None,
        }
    }
    fn kv(&self, namespace: &str, key: &str) -> Option<Value> {
        match (namespace, key) {
            ("company.hr", "HR_API_ENDPOINT") => Some(json!("https://hr.test/api")),
            ("other.ns", "HR_API_ENDPOINT") => Some(json!("https://other.test/api")),
            ("company.hr", "LIMITS") => Some(json!({"days": 25})),
            _ => None,
        }
    }
    /// As if an admin bound `--flows-of company.hr --role viewer --namespace other.ns`.
    fn flow_allowed(&self, from: &str, target: &str, role: tollgate_daemon::auth::Role) -> bool {
        from == "company.hr" && target == "other.ns" && role <= tollgate_daemon::auth::Role::Viewer
    }
    fn app_link(&self, namespace: &str, execution_id: &str, app_id: Option<&str>) -> String {
        match app_id {
            Some(app) => format!("https://tollgate.test/apps/{namespace}/{app}?execution={execution_id}"),
            None => format!("https://tollgate.test/ui/executions/{namespace}/{execution_id}"),
        }
    }
}

/// The context a task of the vacation-approval flow sees after the pause was resumed.
fn seed() -> Value {
    json!({
        "flow": {"id": "vacation_approval", "namespace": "company.hr"},
        "execution": {"id": "exec-42", "startDate": "2025-03-01T09:00:00Z"},
        "labels": {"system": {"username": "alice@example.com"}},
        "inputs": {
            "employee": "bob",
            "employee_email": "bob@example.com",
            "start_date": "2025-04-01",
            "end_date": "2025-04-05",
            "vm_spec": {"cpu": 4, "memoryGb": 16}
        },
        "outputs": {
            "await_decision": {
                "onResume": {"approved": true, "reason": "Enjoy"},
                "resumed": {"by": "carol@example.com", "on": "2025-03-01T10:00:00Z", "to": "SUCCESS"}
            },
            "it_admin_approval": {"resumed": {"by": "dave@example.com"}}
        },
        "vars": {},
        "task": {"id": "update_hr_system"}
    })
}

/// `seed()` with the value at `path` replaced (`Some`) or removed (`None`).
fn with(path: &[&str], value: Option<Value>) -> Value {
    let mut ctx = seed();
    let mut node = &mut ctx;
    for key in &path[..path.len() - 1] {
        node = node.get_mut(*key).expect("path exists in the seed context");
    }
    let obj = node.as_object_mut().expect("parent is an object");
    let last = path[path.len() - 1].to_string();
    match value {
        Some(v) => {
            obj.insert(last, v);
        }
        None => {
            obj.remove(&last);
        }
    }
    ctx
}

enum Expect {
    Text(&'static str),
    /// An `ExprError::Undefined` naming this path.
    Undefined(&'static str),
    /// Any other error whose message contains this text.
    ErrorContaining(&'static str),
}

use Expect::*;

const EMPLOYEE: &str = "{{ inputs.employee ?? labels.system.username }}";
const STATUS: &str = "{{ outputs.await_decision.onResume.approved ? 'APPROVED' : 'REJECTED' }}";
const IS_FALSE: &str = "{{ outputs.await_decision.onResume.approved is false }}";
const APPROVED: &[&str] = &["outputs", "await_decision", "onResume", "approved"];

fn cases() -> Vec<(&'static str, Value, Expect)> {
    vec![
        // --- the seed's `??`: employee set / null / missing / empty / inputs missing altogether
        (EMPLOYEE, seed(), Text("bob")),
        (
            EMPLOYEE,
            with(&["inputs", "employee"], Some(Value::Null)),
            Text("alice@example.com"),
        ),
        (EMPLOYEE, with(&["inputs", "employee"], None), Text("alice@example.com")),
        (EMPLOYEE, with(&["inputs", "employee"], Some(json!(""))), Text("")),
        (
            EMPLOYEE,
            with(&["inputs", "employee"], Some(json!(false))),
            Text("false"),
        ),
        (EMPLOYEE, with(&["inputs"], None), Text("alice@example.com")),
        // The right side is strict: both missing names the right side.
        (
            EMPLOYEE,
            with(&["labels"], Some(json!({}))).pipe(|c| without(c, &["inputs", "employee"])),
            Undefined("labels.system"),
        ),
        // --- the seed's ternary: true / false / null / text / missing
        (STATUS, seed(), Text("APPROVED")),
        (STATUS, with(APPROVED, Some(json!(false))), Text("REJECTED")),
        (STATUS, with(APPROVED, Some(Value::Null)), Text("REJECTED")),
        (STATUS, with(APPROVED, Some(json!("yes"))), Text("APPROVED")),
        (STATUS, with(APPROVED, Some(json!(""))), Text("REJECTED")),
        (STATUS, with(APPROVED, Some(json!(0))), Text("REJECTED")),
        (
            STATUS,
            with(APPROVED, None),
            Undefined("outputs.await_decision.onResume.approved"),
        ),
        (
            STATUS,
            with(&["outputs", "await_decision"], None),
            Undefined("outputs.await_decision"),
        ),
        // --- the seed's `is false`
        (IS_FALSE, seed(), Text("false")),
        (IS_FALSE, with(APPROVED, Some(json!(false))), Text("true")),
        (IS_FALSE, with(APPROVED, Some(Value::Null)), Text("false")),
        (IS_FALSE, with(APPROVED, Some(json!("false"))), Text("true")),
        (
            IS_FALSE,
            with(APPROVED, None),
            Undefined("outputs.await_decision.onResume.approved"),
        ),
        (
            "{{ outputs.await_decision.onResume.approved is true }}",
            seed(),
            Text("true"),
        ),
        (
            "{{ outputs.await_decision.onResume.approved is not false }}",
            seed(),
            Text("true"),
        ),
        // --- the seed's plain references
        (
            "{{ outputs.await_decision.onResume }}",
            seed(),
            Text(r#"{"approved":true,"reason":"Enjoy"}"#),
        ),
        (
            "Decision: {{ outputs.await_decision.onResume }}\n",
            seed(),
            Text("Decision: {\"approved\":true,\"reason\":\"Enjoy\"}\n"),
        ),
        ("{{ outputs.await_decision.onResume.reason }}", seed(), Text("Enjoy")),
        (
            "{{ outputs.await_decision.onResume.reason }}",
            with(&["outputs", "await_decision", "onResume", "reason"], Some(Value::Null)),
            Text(""),
        ),
        (
            "Reason: {{ outputs.await_decision.onResume.reason }}",
            with(&["outputs", "await_decision", "onResume", "reason"], None),
            Undefined("outputs.await_decision.onResume.reason"),
        ),
        (
            "{{ outputs.await_decision.resumed.by }}",
            seed(),
            Text("carol@example.com"),
        ),
        (
            "{{ outputs.await_decision.resumed.on }}",
            seed(),
            Text("2025-03-01T10:00:00Z"),
        ),
        ("{{ outputs.await_decision.resumed.to }}", seed(), Text("SUCCESS")),
        (
            "{{ outputs.it_admin_approval.resumed.by }}",
            seed(),
            Text("dave@example.com"),
        ),
        (
            "{{ outputs.it_admin_approval.resumed.by }}",
            with(&["outputs", "it_admin_approval"], None),
            Undefined("outputs.it_admin_approval"),
        ),
        ("{{ labels.system.username }}", seed(), Text("alice@example.com")),
        (
            "{{ inputs.start_date }} → {{ inputs.end_date }}",
            seed(),
            Text("2025-04-01 → 2025-04-05"),
        ),
        ("{{ inputs.employee_email }}", seed(), Text("bob@example.com")),
        (
            "{{ inputs.employee_email }}",
            with(&["inputs", "employee_email"], None),
            Undefined("inputs.employee_email"),
        ),
        ("{{ inputs.vm_spec }}", seed(), Text(r#"{"cpu":4,"memoryGb":16}"#)),
        (
            "{{ inputs.vm_spec }}",
            with(&["inputs", "vm_spec"], Some(json!("2 vCPU"))),
            Text("2 vCPU"),
        ),
        ("{{ flow.id }}", seed(), Text("vacation_approval")),
        (
            "Validating VM request from {{ labels.system.username }}: {{ inputs.vm_spec }}",
            seed(),
            Text(r#"Validating VM request from alice@example.com: {"cpu":4,"memoryGb":16}"#),
        ),
        (
            "Approved by {{ outputs.it_admin_approval.resumed.by }}! Provisioning VM for {{ labels.system.username }}",
            seed(),
            Text("Approved by dave@example.com! Provisioning VM for alice@example.com"),
        ),
        // --- the seed's functions
        (
            "{{ secret('SLACK_HR_WEBHOOK') }}",
            seed(),
            Text("https://hooks.slack.test/T000/B000/XXXX"),
        ),
        (
            "{{ secret('NOPE_NOT_SET_ANYWHERE') }}",
            seed(),
            ErrorContaining("SECRET_NOPE_NOT_SET_ANYWHERE"),
        ),
        (
            "{{ kv('HR_API_ENDPOINT') }}/approvals",
            seed(),
            Text("https://hr.test/api/approvals"),
        ),
        (
            "{{ kv('HR_API_ENDPOINT', 'other.ns') }}",
            seed(),
            Text("https://other.test/api"),
        ),
        (
            "{{ kv('HR_API_ENDPOINT', namespace='other.ns') }}",
            seed(),
            Text("https://other.test/api"),
        ),
        (
            "{{ kv('HR_API_ENDPOINT', 'sec') }}",
            seed(),
            ErrorContaining("may not read from namespace `sec`"),
        ),
        (
            "{{ secret('API_TOKEN', namespace='sec') | base64encode }}",
            seed(),
            ErrorContaining("may not read from namespace `sec`"),
        ),
        (
            "{{ secret('API_TOKEN', namespace='company') }}",
            seed(),
            Text("tok-123"),
        ),
        ("{{ kv('LIMITS').days }}", seed(), Text("25")),
        ("{{ kv('MISSING') }}", seed(), ErrorContaining("MISSING")),
        ("[{{ kv('MISSING', errorOnMissing=false) }}]", seed(), Text("[]")),
        (
            "{{ appLink() }}",
            seed(),
            Text("https://tollgate.test/ui/executions/company.hr/exec-42"),
        ),
        (
            "{{ appLink('appId') }}",
            seed(),
            Text("https://tollgate.test/apps/company.hr/appId?execution=exec-42"),
        ),
        (
            "{ \"text\": \"The process {{ flow.id }} is pending approval {{ appLink() }}\" }",
            seed(),
            Text(
                "{ \"text\": \"The process vacation_approval is pending approval https://tollgate.test/ui/executions/company.hr/exec-42\" }",
            ),
        ),
        (
            "{\n\"channel\": \"#vacation-approvals\",\n\"text\": \"Review request from {{ inputs.employee ?? labels.system.username }}\\n*Dates*: {{ inputs.start_date }} → {{ inputs.end_date }}\\nApprove: {{ appLink('appId') }}\"\n}\n",
            seed(),
            Text(
                "{\n\"channel\": \"#vacation-approvals\",\n\"text\": \"Review request from bob\\n*Dates*: 2025-04-01 → 2025-04-05\\nApprove: https://tollgate.test/apps/company.hr/appId?execution=exec-42\"\n}\n",
            ),
        ),
        // --- `??` and `???`
        ("{{ inputs.nothing ?? 'fallback' }}", seed(), Text("fallback")),
        ("{{ outputs.x.y.z ?? 'deep' }}", seed(), Text("deep")),
        (
            "{{ outputs.await_decision.onResume.reason.x.y ?? 'deep' }}",
            seed(),
            Text("deep"),
        ),
        ("{{ inputs.a ?? inputs.b ?? 'third' }}", seed(), Text("third")),
        ("{{ (inputs.a ?? 'x') ~ '!' }}", seed(), Text("x!")),
        ("{{ inputs.a ?? 'x' ~ '!' }}", seed(), Text("x!")),
        ("[{{ nul ??? 'undefined only' }}]", json!({"nul": null}), Text("[]")),
        ("{{ missing ??? 'undefined only' }}", json!({}), Text("undefined only")),
        ("{{ nul ?? 'null too' }}", json!({"nul": null}), Text("null too")),
        ("{{ (inputs.missing | upper) ?? 'guarded' }}", seed(), Text("guarded")),
        (
            "{{ inputs.list[5] ?? 'out of range' }}",
            json!({"inputs": {"list": [1, 2]}}),
            Text("out of range"),
        ),
        ("{{ inputs.employee ?? missing.right.side }}", seed(), Text("bob")),
        // --- ternaries
        (
            "{{ n > 5 ? 'big' : n > 2 ? 'mid' : 'small' }}",
            json!({"n": 3}),
            Text("mid"),
        ),
        (
            "{{ n > 5 ? 'big' : n > 2 ? 'mid' : 'small' }}",
            json!({"n": 9}),
            Text("big"),
        ),
        (
            "{{ n > 5 ? 'big' : n > 2 ? 'mid' : 'small' }}",
            json!({"n": 1}),
            Text("small"),
        ),
        (
            "{{ a ? b ? 'ab' : 'a' : 'none' }}",
            json!({"a": true, "b": false}),
            Text("a"),
        ),
        (
            "{{ 'result: ' ~ (ok ? 'yes' : 'no') }}",
            json!({"ok": true}),
            Text("result: yes"),
        ),
        ("{{ (ok ?? false) ? 'set' : 'unset' }}", json!({}), Text("unset")),
        ("{{ ok ? missing : 'no' }}", json!({"ok": false}), Text("no")),
        ("{{ ok ? missing : 'no' }}", json!({"ok": true}), Undefined("missing")),
        // --- tests
        ("{{ x is null }}", json!({"x": null}), Text("true")),
        ("{{ x is not null }}", json!({"x": 1}), Text("true")),
        ("{{ x is null }}", json!({}), Undefined("x")),
        ("{{ x is defined }}", json!({}), Text("false")),
        ("{{ x.y.z is defined }}", json!({"x": {}}), Text("false")),
        ("{{ x is defined }}", json!({"x": null}), Text("false")),
        ("{{ x is defined }}", json!({"x": 0}), Text("true")),
        ("{{ x is not defined }}", json!({}), Text("true")),
        ("{{ x is empty }}", json!({"x": "  "}), Text("true")),
        ("{{ x is empty }}", json!({"x": []}), Text("true")),
        ("{{ x is not empty }}", json!({"x": {"a": 1}}), Text("true")),
        ("{{ x is true }}", json!({"x": true}), Text("true")),
        ("{{ x is true }}", json!({"x": "TRUE"}), Text("true")),
        ("{{ x is true }}", json!({"x": 1}), Text("false")),
        ("{{ 4 is even }} {{ 3 is odd }}", json!({}), Text("true true")),
        (
            "{{ x is map }} {{ y is iterable }}",
            json!({"x": {}, "y": []}),
            Text("true true"),
        ),
        ("{{ '{\"a\":1}' is json }}", json!({}), Text("true")),
        // --- boolean logic and comparison
        ("{{ a and b }}", json!({"a": true, "b": false}), Text("false")),
        ("{{ a or b }}", json!({"a": false, "b": true}), Text("true")),
        ("{{ not a }}", json!({"a": false}), Text("true")),
        ("{{ not (a == 1) }}", json!({"a": 2}), Text("true")),
        ("{{ a == 'x' and b != 'y' }}", json!({"a": "x", "b": "z"}), Text("true")),
        ("{{ x is not null and x > 2 }}", json!({"x": 3}), Text("true")),
        ("{{ a equals 1 }}", json!({"a": 1}), Text("true")),
        ("{{ 1 == 1.0 }}", json!({}), Text("true")),
        (
            "{{ items contains 'b' }} {{ 'team' contains 'ea' }} {{ m contains 'k' }}",
            json!({"items": ["a", "b"], "m": {"k": 1}}),
            Text("true true true"),
        ),
        (
            "{{ 'b' in items }} {{ 'z' not in items }}",
            json!({"items": ["a", "b"]}),
            Text("true true"),
        ),
        // --- concatenation, arithmetic, literals
        ("{{ 'a' ~ 1 ~ true ~ null }}", json!({}), Text("a1true")),
        (
            "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }} {{ 7.0 / 2 }} {{ 7 % 3 }} {{ -x }}",
            json!({"x": 4}),
            Text("7 9 3 3.5 1 -4"),
        ),
        ("{{ 'a' + 1 }}", json!({}), ErrorContaining("`~`")),
        ("{{ 1 / 0 }}", json!({}), ErrorContaining("division by zero")),
        (
            "{{ [1, 'two', null] }} {{ {'k': [true]} }}",
            json!({}),
            Text(r#"[1,"two",null] {"k":[true]}"#),
        ),
        ("{{ 1..3 }}", json!({}), Text("[1,2,3]")),
        (
            "{{ \"Hello #{name | upper}!\" }}",
            json!({"name": "ada"}),
            Text("Hello ADA!"),
        ),
        ("{{ '#{not interpolated}' }}", json!({}), Text("#{not interpolated}")),
        (
            "{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }}",
            json!({}),
            Text("it's say \"hi\""),
        ),
        ("{{ '}}' ~ \"{%\" ~ '{{' ~ \"%}\" }}", json!({}), Text("}}{%{{%}")),
        ("{{ {'a': {'b': '}}'}}.a.b }}", json!({}), Text("}}")),
        (
            "{{ items[1] }} {{ items.0 }} {{ m['a-b'] }}",
            json!({"items": ["x", "y"], "m": {"a-b": 3}}),
            Text("y x 3"),
        ),
        // --- filters
        (
            "{{ name | upper }} {{ name | lower }} {{ '  pad ' | trim }}",
            json!({"name": "Ada"}),
            Text("ADA ada pad"),
        ),
        ("{{ missing | default('dflt') }}", json!({}), Text("dflt")),
        ("{{ x.y.z | default('dflt') }}", json!({"x": null}), Text("dflt")),
        ("{{ empty | default('dflt') }}", json!({"empty": ""}), Text("dflt")),
        ("{{ v | default('dflt') }}", json!({"v": "set"}), Text("set")),
        (
            "{{ m | toJson }} {{ m | json }} {{ 'q\"' | toJson }} {{ null | toJson }}",
            json!({"m": {"a": [1, null]}}),
            Text(r#"{"a":[1,null]} {"a":[1,null]} "q\"" null"#),
        ),
        (
            "{{ l | length }} {{ 'héllo' | length }} {{ l | first }} {{ l | last }} {{ l | join(', ') }}",
            json!({"l": [1, 2, 3]}),
            Text("3 5 1 3 1, 2, 3"),
        ),
        (
            "{{ 'a-b-c' | replace({'-': '+'}) }} {{ 'a-b' | replace('-', '_') }} {{ 'a1b22' | replace('\\d+', '#', regexp=true) }}",
            json!({}),
            Text("a+b+c a_b a#b#"),
        ),
        ("{{ 'a,b,,c' | split(',') }}", json!({}), Text(r#"["a","b","","c"]"#)),
        (
            "{{ m | keys }} {{ m | values }}",
            json!({"m": {"a": 1, "b": 2}}),
            Text(r#"["a","b"] [1,2]"#),
        ),
        (
            "{{ -3 | abs }} {{ '42' | number + 1 }} {{ '2.5' | number }}",
            json!({}),
            Text("3 43 2.5"),
        ),
        ("{{ 'abc' | number }}", json!({}), ErrorContaining("not a number")),
        (
            "{{ 'hello world' | capitalize }} {{ 'hello world' | title }}",
            json!({}),
            Text("Hello world Hello World"),
        ),
        (
            "{{ 'abcdef' | abbreviate(5) }} {{ [3, 1, 2] | sort }} {{ 'abc' | reverse }}",
            json!({}),
            Text("ab... [1,2,3] cba"),
        ),
        (
            "{{ 'a b&c' | urlencode }} {{ 'hi' | base64encode }} {{ 'aGk=' | base64decode }}",
            json!({}),
            Text("a+b%26c aGk= hi"),
        ),
        (
            "{{ 'report.tar.gz' | substringBefore('.') }} {{ 'report.tar.gz' | substringAfterLast('.') }}",
            json!({}),
            Text("report gz"),
        ),
        (
            "{{ 'abc' | startsWith('ab') }} {{ 'abc' | endsWith('x') }}",
            json!({}),
            Text("true false"),
        ),
        (
            "{{ 'x' | frobnicate }}",
            json!({}),
            ErrorContaining("unknown filter `frobnicate`"),
        ),
        ("{{ 'x' | uper }}", json!({}), ErrorContaining("did you mean `upper`")),
        // --- dates
        (
            "{{ '2025-04-01T10:20:30Z' | date('yyyy-MM-dd HH:mm') }}",
            json!({}),
            Text("2025-04-01 10:20"),
        ),
        (
            "{{ '2025-04-01T10:20:30Z' | date('dd/MM/yy EEE MMM', timeZone='Europe/Paris') }}",
            json!({}),
            Text("01/04/25 Tue Apr"),
        ),
        (
            "{{ '2025-04-01T10:20:30Z' | date('HH:mmXXX', timeZone='Europe/Paris') }}",
            json!({}),
            Text("12:20+02:00"),
        ),
        (
            "{{ '2025-04-01T10:20:30.5Z' | date('iso') }}",
            json!({}),
            Text("2025-04-01T10:20:30.500000Z"),
        ),
        (
            "{{ '2025-04-01' | date('EEEE d MMMM yyyy') }}",
            json!({}),
            Text("Tuesday 1 April 2025"),
        ),
        ("{{ 0 | date('yyyy-MM-dd') }}", json!({}), Text("1970-01-01")),
        (
            "{{ '01/04/2025' | date('yyyy-MM-dd', existingFormat='dd/MM/yyyy') }}",
            json!({}),
            Text("2025-04-01"),
        ),
        (
            "{{ '2025-01-31T00:00:00Z' | dateAdd(1, 'MONTHS', format='yyyy-MM-dd') }}",
            json!({}),
            Text("2025-02-28"),
        ),
        (
            "{{ 'not a date' | date('yyyy') }}",
            json!({}),
            ErrorContaining("not a date"),
        ),
        // --- tags
        (
            "{% for x in items %}{{ loop.index }}:{{ x }}{% if not loop.last %},{% endif %}{% endfor %}",
            json!({"items": ["a", "b"]}),
            Text("0:a,1:b"),
        ),
        (
            "{% for e in m %}{{ e.key }}={{ e.value }};{% endfor %}",
            json!({"m": {"a": 1, "b": 2}}),
            Text("a=1;b=2;"),
        ),
        (
            "{% for x in items %}{{ x }}{% else %}none{% endfor %}",
            json!({"items": []}),
            Text("none"),
        ),
        ("{% for i in 1..3 %}{{ i }}{% endfor %}", json!({}), Text("123")),
        (
            "{% if n > 1 %}many{% elseif n == 1 %}one{% else %}zero{% endif %}",
            json!({"n": 1}),
            Text("one"),
        ),
        (
            "{% set greeting = 'Hi ' ~ name %}{{ greeting }}",
            json!({"name": "Ada"}),
            Text("Hi Ada"),
        ),
        (
            "{% raw %}{{ not rendered }}{% endraw %}",
            json!({}),
            Text("{{ not rendered }}"),
        ),
        ("{% verbatim %}{% if %}{% endverbatim %}", json!({}), Text("{% if %}")),
        ("a{# a comment with }} and {{ #}b", json!({}), Text("ab")),
        ("a  {{- 'b' -}}  c", json!({}), Text("abc")),
        (
            "line\n{% if true %}\nyes\n{% endif %}\n",
            json!({}),
            Text("line\n\nyes\n\n"),
        ),
        (
            "{% filter upper %}shout {{ name }}{% endfilter %}",
            json!({"name": "ada"}),
            Text("SHOUT ADA"),
        ),
        // --- undefined names and error locations
        ("{{ inputs.foo }}", seed(), Undefined("inputs.foo")),
        ("{{ nothing }}", seed(), Undefined("nothing")),
        ("{{ inputs.employee.name }}", seed(), Undefined("inputs.employee.name")),
        (
            "{{ inputs.nul.name }}",
            json!({"inputs": {"nul": null}}),
            Undefined("inputs.nul.name"),
        ),
        ("{% for x in missing %}{% endfor %}", json!({}), Undefined("missing")),
        ("{% if missing %}{% endif %}", json!({}), Undefined("missing")),
        // --- syntax errors
        ("{{ a ? }}", json!({}), ErrorContaining("expected an expression")),
        ("{{ 'unclosed }}", json!({}), ErrorContaining("never closed")),
        ("{{ a", json!({}), ErrorContaining("`{{` is never closed")),
        ("{% if a %}x", json!({}), ErrorContaining("`{% if %}` is never closed")),
        ("{% endif %}", json!({}), ErrorContaining("without an opening")),
        ("{{ foo() }}", json!({}), ErrorContaining("unknown function `foo()`")),
        // Without the daemon's storage (validation, these cases) the file functions say so.
        (
            "{{ read('x') }}",
            json!({}),
            ErrorContaining("there is no internal storage here"),
        ),
        (
            "{{ fileSize('kestra:///a') }}",
            json!({}),
            ErrorContaining("there is no internal storage here"),
        ),
        (
            "{{ fileExists('a') }}",
            json!({}),
            ErrorContaining("there is no internal storage here"),
        ),
        (
            "{{ isFileEmpty('a') }}",
            json!({}),
            ErrorContaining("there is no internal storage here"),
        ),
        (
            "{{ fileURI('a') }}",
            json!({}),
            ErrorContaining("Tollgate has no namespace files"),
        ),
        (
            "{{ encrypt('k', 'x') }}",
            json!({}),
            ErrorContaining("`encrypt()` is not supported in Tollgate: it needs Kestra's encryption key"),
        ),
        ("{{ fromIon('x') }}", json!({}), ErrorContaining("Amazon Ion")),
        (
            "{{ x | toIon }}",
            json!({"x": 1}),
            ErrorContaining("the filter `toIon` is not supported in Tollgate"),
        ),
        // --- jq (the result is always the list of every value, as in Kestra)
        ("{{ m | jq('.a') }}", json!({"m": {"a": 1}}), Text("[1]")),
        (
            "{{ m | jq('.a') | first }}",
            json!({"m": {"a": {"b": "x"}}}),
            Text("{\"b\":\"x\"}"),
        ),
        (
            "{{ m | jq('.[] | .n') }}",
            json!({"m": [{"n": 1}, {"n": 2}]}),
            Text("[1,2]"),
        ),
        (
            "{{ t | jq('.a + 1') | first }}",
            json!({"t": "{\"a\": 41}"}),
            Text("42"),
        ),
        (
            "{{ m | jq('map(select(. > 1)) | length') | first }}",
            json!({"m": [1, 2, 3]}),
            Text("2"),
        ),
        (
            "{{ m | jq('.a |') }}",
            json!({"m": {}}),
            ErrorContaining("jq('.a |'): `.a |` does not parse"),
        ),
        (
            "{{ m | jq('env') }}",
            json!({"m": {}}),
            ErrorContaining("does not define here: `env`"),
        ),
        (
            "{{ m | jq('halt') }}",
            json!({"m": {}}),
            ErrorContaining("the jq program called halt"),
        ),
        ("{{ m | jq('stderr | .a') }}", json!({"m": {"a": 3}}), Text("[3]")),
        (
            "{{ m | jq('error(\"boom\")') }}",
            json!({"m": {}}),
            ErrorContaining("jq error: \"boom\""),
        ),
        (
            "{{ t | jq('.') }}",
            json!({"t": "not json"}),
            ErrorContaining("jq: the input text is not JSON"),
        ),
        (
            "{{ m | jq }}",
            json!({"m": {}}),
            ErrorContaining("jq needs an expression"),
        ),
        (
            "{{ m | jq('[limit(3; repeat(1))]') | first }}",
            json!({"m": 0}),
            Text("[1,1,1]"),
        ),
        // --- render / renderOnce
        ("{{ render(t) }}", json!({"t": "{{ 1 + 1 }}", "x": 5}), Text("2")),
        (
            "{{ render(t) }}",
            json!({"t": "{{ u }}", "u": "{{ x }}", "x": 5}),
            Text("5"),
        ),
        (
            "{{ render(t, recursive=false) }}",
            json!({"t": "{{ u }}", "u": "{{ x }}", "x": 5}),
            Text("{{ x }}"),
        ),
        (
            "{{ renderOnce(t) }}",
            json!({"t": "{{ u }}", "u": "{{ x }}", "x": 5}),
            Text("{{ x }}"),
        ),
        ("{{ render('plain') }}", json!({}), Text("plain")),
        ("{{ render(t) }}", json!({"t": "{{ nope }}"}), Undefined("nope")),
        (
            "{{ render(t) }}",
            json!({"t": "{{ 'x' "}),
            ErrorContaining("render(): `{{ 'x' ` is not a valid template"),
        ),
        (
            "{{ render(t, recursive='yes') }}",
            json!({"t": "a"}),
            ErrorContaining("render(): `recursive` must be true or false"),
        ),
        (
            "{{ render(t) }}",
            json!({"t": "{{ render(t) }}"}),
            ErrorContaining("render() calls nest more than"),
        ),
        (
            "{{ render(t) }}",
            json!({"t": "{{ secret('API_TOKEN') }}"}),
            Text("tok-123"),
        ),
        // --- yaml, hashes, className, timestamps, escapeChar, numberformat, escape, raw
        ("{{ yaml('a: 1\nb: [x, y]').b[1] }}", json!({}), Text("y")),
        ("{{ yaml(3) }}", json!({}), ErrorContaining("yaml() needs YAML text")),
        (
            "{{ yaml('a: [') }}",
            json!({}),
            ErrorContaining("yaml(): not valid YAML"),
        ),
        (
            "{{ m | yaml }}",
            json!({"m": {"a": 1, "b": ["x"]}}),
            Text("a: 1\nb:\n- x\n"),
        ),
        ("{{ 'abc' | md5 }}", json!({}), Text("900150983cd24fb0d6963f7d28e17f72")),
        (
            "{{ 'abc' | sha1 }}",
            json!({}),
            Text("a9993e364706816aba3e25717850c26c9cd0d89d"),
        ),
        ("{{ 'x' | className }}", json!({}), Text("java.lang.String")),
        ("{{ 1 | className }}", json!({}), Text("java.lang.Integer")),
        ("{{ 1.5 | className }}", json!({}), Text("java.lang.Double")),
        ("{{ m | className }}", json!({"m": {}}), Text("java.util.LinkedHashMap")),
        ("{{ m | className }}", json!({"m": []}), Text("java.util.ArrayList")),
        (
            "{{ '2024-01-02T03:04:05.123456789Z' | timestampMilli }}",
            json!({}),
            Text("1704164645123"),
        ),
        (
            "{{ '2024-01-02T03:04:05.123456789Z' | timestampMicro }}",
            json!({}),
            Text("1704164645123456"),
        ),
        (
            "{{ '2024-01-02T03:04:05.123456789Z' | timestampNano }}",
            json!({}),
            Text("1704164645123456789"),
        ),
        ("{{ 'nope' | timestampNano }}", json!({}), ErrorContaining("nope")),
        ("{{ \"it's\" | escapeChar('single') }}", json!({}), Text("it\\'s")),
        ("{{ \"it's\" | escapeChar('shell') }}", json!({}), Text("it'\\''s")),
        (
            "{{ m | escapeChar('double') }}",
            json!({"m": {"a": "say \"hi\""}}),
            Text("{\"a\":\"say \\\\\\\"hi\\\\\\\"\"}"),
        ),
        (
            "{{ 'x' | escapeChar('triple') }}",
            json!({}),
            ErrorContaining("escapeChar: the type must be 'single', 'double' or 'shell'"),
        ),
        (
            "{{ 1234567.891 | numberformat('#,##0.00') }}",
            json!({}),
            Text("1,234,567.89"),
        ),
        ("{{ 3.14159 | numberformat('#.##') }}", json!({}), Text("3.14")),
        ("{{ 2.5 | numberformat('0') }}", json!({}), Text("2")),
        ("{{ 3.5 | numberformat('0') }}", json!({}), Text("4")),
        ("{{ 0.256 | numberformat('#%') }}", json!({}), Text("26%")),
        ("{{ 7 | numberformat('000') }}", json!({}), Text("007")),
        ("{{ 1234.5 | numberformat }}", json!({}), Text("1,234.5")),
        (
            "{{ 'x' | numberformat('#') }}",
            json!({}),
            ErrorContaining("numberformat needs a number"),
        ),
        (
            "{{ 1 | numberformat('abc') }}",
            json!({}),
            ErrorContaining("has no digits"),
        ),
        (
            "{{ '<a href=\"x\">&</a>' | escape }}",
            json!({}),
            Text("&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"),
        ),
        ("{{ 'a b&c' | escape('url_param') }}", json!({}), Text("a%20b%26c")),
        (
            "{{ 'x' | escape('css') }}",
            json!({}),
            ErrorContaining("escape: unknown strategy `css`"),
        ),
        ("{{ '<b>' | raw }}", json!({}), Text("<b>")),
        // --- ids and random numbers (shapes, not values)
        ("{{ uuid() | length }}", json!({}), Text("36")),
        ("{{ id() | length }}", json!({}), Text("22")),
        ("{{ randomInt(3, 4) }}", json!({}), Text("3")),
        (
            "{{ randomInt(5, 4) }}",
            json!({}),
            ErrorContaining("randomInt(): `upper` (4) is less than `lower` (5)"),
        ),
        ("{{ fetchContext().x }}", json!({"x": 7}), Text("7")),
        ("{{ printContext() | keys }}", json!({"x": 7}), Text("[\"x\"]")),
        // --- currentEachOutput: this iteration's outputs at every loop level
        (
            "{{ currentEachOutput(outputs.t).v }}",
            json!({"outputs": {"t": {"a": {"v": 1}, "b": {"v": 2}}}, "taskrun": {"value": "b"}}),
            Text("2"),
        ),
        (
            "{{ currentEachOutput(outputs.t).v }}",
            json!({"outputs": {"t": {"o1": {"i1": {"v": 11}}, "o2": {"i1": {"v": 21}}}}, "taskrun": {"value": "i1"}, "parents": [{"taskrun": {"value": "o2"}}]}),
            Text("21"),
        ),
        (
            "{{ currentEachOutput(outputs.t).v ?? 'none yet' }}",
            json!({"outputs": {"t": {"a": {"v": 1}}}, "taskrun": {"value": "z"}}),
            Text("none yet"),
        ),
        (
            "{{ currentEachOutput(outputs.t) }}",
            json!({"outputs": {"t": {"a": 1}}}),
            ErrorContaining("currentEachOutput() can only be used in a task inside a ForEach"),
        ),
        (
            "{{ currentEachOutput('x') }}",
            json!({}),
            ErrorContaining("currentEachOutput() needs the outputs of a task"),
        ),
        // --- errorLogs() without a daemon: no lines
        ("{{ errorLogs() | length }}", json!({}), Text("0")),
        // --- `??` on a task that did not run
        ("{{ outputs.missing.value ?? 'x' }}", json!({"outputs": {}}), Text("x")),
        ("{% include 'x' %}", json!({}), ErrorContaining("not supported")),
        ("{{ a.b() }}", json!({}), ErrorContaining("method calls")),
    ]
}

/// `value.pipe(f)`: lets a case build its context in one expression.
trait Pipe: Sized {
    fn pipe(self, f: impl FnOnce(Self) -> Self) -> Self {
        f(self)
    }
}
impl Pipe for Value {}

fn without(mut ctx: Value, path: &[&str]) -> Value {
    let mut node = &mut ctx;
    for key in &path[..path.len() - 1] {
        node = node.get_mut(*key).expect("path exists");
    }
    if let Some(obj) = node.as_object_mut() {
        obj.remove(path[path.len() - 1]);
    }
    ctx
}

#[test]
fn expression_table() {
    let renderer = Renderer::new();
    let mut failures = Vec::new();
    for (template, vars, expect) in cases() {
        let got = renderer.render(template, &vars, &Fixed, "company.hr", "exec-42");
        let ok = match (&expect, &got) {
            (Text(want), Ok(r)) => r.text == *want,
            (Undefined(name), Err(ExprError::Undefined { name: got, .. })) => got == name,
            (ErrorContaining(part), Err(e)) if !matches!(e, ExprError::Undefined { .. }) => {
                e.to_string().contains(part)
            }
            _ => false,
        };
        if !ok {
            let want = match expect {
                Text(t) => format!("text {t:?}"),
                Undefined(n) => format!("undefined `{n}`"),
                ErrorContaining(p) => format!("error containing {p:?}"),
            };
            failures.push(format!("{template}\n    want {want}\n    got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn undefined_error_names_the_expression_block() {
    let err = Renderer::new()
        .render(
            "Hi {{ flow.id }}, see {{ inputs.foo | upper }}.",
            &seed(),
            &NoServices,
            "ns",
            "e",
        )
        .expect_err("inputs.foo is undefined");
    assert_eq!(
        err,
        ExprError::Undefined {
            name: "inputs.foo".into(),
            expression: "{{ inputs.foo | upper }}".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "undefined variable `inputs.foo` in `{{ inputs.foo | upper }}`"
    );
}

#[test]
fn render_errors_name_the_expression_block() {
    let err = Renderer::new()
        .render(
            "ok {{ flow.id }} then {{ 'abc' | number }} end",
            &seed(),
            &NoServices,
            "ns",
            "e",
        )
        .expect_err("abc is not a number");
    match err {
        ExprError::Render { expression, message } => {
            assert_eq!(expression, "{{ 'abc' | number }}");
            assert!(message.contains("`abc` is not a number"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn secrets_are_reported_for_masking() {
    let r = Renderer::new()
        .render(
            "{{ secret('API_TOKEN') }} and {{ secret('TEAMS_WEBHOOK') }}",
            &seed(),
            &Fixed,
            "ns",
            "e",
        )
        .expect("renders");
    assert_eq!(r.text, "tok-123 and https://teams.test/hook");
    assert_eq!(
        r.secrets,
        vec!["tok-123".to_string(), "https://teams.test/hook".to_string()]
    );
}

#[test]
fn secret_with_a_computed_name_is_looked_up_too() {
    let vars = json!({"which": "API"});
    let r = Renderer::new()
        .render("{{ secret(which ~ '_TOKEN') }}", &vars, &Fixed, "ns", "e")
        .expect("renders");
    assert_eq!(r.text, "tok-123");
    assert_eq!(r.secrets, vec!["tok-123".to_string()]);
}

#[test]
fn errors_never_show_secret_values() {
    let err = Renderer::new()
        .render("{{ secret('API_TOKEN') | number }}", &seed(), &Fixed, "ns", "e")
        .expect_err("a token is not a number");
    assert!(!err.to_string().contains("tok-123"), "{err}");
    assert!(err.to_string().contains("******"), "{err}");
}

#[test]
fn now_renders_the_current_time() {
    let r = Renderer::new()
        .render(
            "{{ now() | date('yyyy') }}|{{ now() }}",
            &json!({}),
            &NoServices,
            "ns",
            "e",
        )
        .expect("renders");
    let (year, iso) = r.text.split_once('|').expect("two parts");
    assert_eq!(year, chrono::Utc::now().format("%Y").to_string());
    assert!(chrono::DateTime::parse_from_rfc3339(iso).is_ok(), "{iso}");
}

#[test]
fn check_syntax_reports_position() {
    let err = Renderer::new()
        .check_syntax("line one\n  {{ inputs.a ?? }}")
        .expect_err("missing right side");
    match err {
        ExprError::Syntax {
            expression,
            line,
            column,
            message,
        } => {
            assert_eq!(expression, "{{ inputs.a ?? }}");
            assert_eq!((line, column), (2, 18), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        Renderer::new()
            .check_syntax("{{ inputs.employee ?? labels.system.username }}")
            .is_ok()
    );
}

#[test]
fn referenced_roots_lists_static_paths() {
    let roots = Renderer::referenced_roots(
        "{{ outputs.await_decision.onResume.approved ? 'A' : 'R' }} {{ inputs.employee ?? labels.system.username }} \
         {% for x in inputs.list %}{{ x.name }}{{ loop.index }}{% endfor %} {{ outputs['t-1'].value }} {{ vars.m[inputs.k].z }}",
    );
    let want: Vec<Vec<String>> = [
        &["outputs", "await_decision", "onResume", "approved"][..],
        &["inputs", "employee"],
        &["labels", "system", "username"],
        &["inputs", "list"],
        &["outputs", "t-1", "value"],
        &["vars", "m"],
        &["inputs", "k"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect())
    .collect();
    assert_eq!(roots, want);
    let refs = Renderer::references("{{ inputs.a ?? inputs.b }}").expect("parses");
    assert!(refs[0].guarded && !refs[1].guarded, "{refs:?}");
}
