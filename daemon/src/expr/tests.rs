//! Unit tests of the expression front end: tokenizer, parser, translation, limits, properties.
//! The table of rendering cases (seed expressions with null/undefined/boolean/string variants)
//! lives in `daemon/tests/expr_cases.rs`.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::json;

use super::lexer::{self, BlockKind, Segment, StrPart, Tok};
use super::{ExprError, NoServices, Renderer, decode_env_secret, limits};

fn render(template: &str, vars: serde_json::Value) -> Result<String, ExprError> {
    Renderer::new()
        .render(template, &vars, &NoServices, "company.team", "exec1")
        .map(|r| r.text)
}

/// The blocks `scan` finds, as (kind, source text).
fn blocks(src: &str) -> Vec<(BlockKind, String)> {
    lexer::scan(src)
        .expect("scan")
        .into_iter()
        .filter_map(|s| match s {
            Segment::Block(b) => Some((b.kind, src[b.start..b.end].to_string())),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- tokenizer

#[test]
fn closing_braces_inside_strings_do_not_end_a_block() {
    let src = "a {{ '}}' ~ \"%}\" }} b {% set x = '%}' %} c";
    assert_eq!(
        blocks(src),
        vec![
            (BlockKind::Print, "{{ '}}' ~ \"%}\" }}".to_string()),
            (BlockKind::Tag, "{% set x = '%}' %}".to_string())
        ]
    );
}

#[test]
fn map_literal_braces_nest() {
    let src = "{{ {'a': {'b': 1}} }}tail";
    assert_eq!(
        blocks(src),
        vec![(BlockKind::Print, "{{ {'a': {'b': 1}} }}".to_string())]
    );
    let segments = lexer::scan(src).expect("scan");
    assert!(matches!(segments.last(), Some(Segment::Text { start, end }) if &src[*start..*end] == "tail"));
}

#[test]
fn escaped_quotes_stay_inside_the_string() {
    let segments = lexer::scan(r#"{{ 'it\'s }}' ~ "a \"}}\" b" }}"#).expect("scan");
    let Segment::Block(b) = &segments[0] else {
        panic!("expected a block")
    };
    let strings: Vec<String> = b
        .tokens
        .iter()
        .filter_map(|t| match &t.kind {
            Tok::Str(parts) => match parts.as_slice() {
                [StrPart::Lit(s)] => Some(s.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(strings, vec!["it's }}".to_string(), "a \"}}\" b".to_string()]);
}

#[test]
fn interpolation_is_lexed_recursively() {
    let segments = lexer::scan(r#"{{ "x #{ {'k': '}'}['k'] } y" }}"#).expect("scan");
    let Segment::Block(b) = &segments[0] else {
        panic!("expected a block")
    };
    let Tok::Str(parts) = &b.tokens[0].kind else {
        panic!("expected a string")
    };
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert!(matches!(&parts[1], StrPart::Interp { tokens, .. } if tokens.len() == 8));
    assert_eq!(
        render(r#"{{ "x #{ {'k': '}'}['k'] } y" }}"#, json!({})).unwrap(),
        "x } y"
    );
}

#[test]
fn operators_lex_longest_first() {
    let segments = lexer::scan("{{ a ??? b ?? c ? d : e..f }}").expect("scan");
    let Segment::Block(b) = &segments[0] else {
        panic!("expected a block")
    };
    let puncts: Vec<&str> = b
        .tokens
        .iter()
        .filter_map(|t| match t.kind {
            Tok::Punct(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(puncts, vec!["???", "??", "?", ":", ".."]);
}

#[test]
fn trim_markers_and_comments() {
    let segments = lexer::scan("{{- a -}}{#- c -#}{%- if x -%}").expect("scan");
    assert!(matches!(&segments[0], Segment::Block(b) if b.trim_left && b.trim_right));
    assert!(matches!(
        &segments[1],
        Segment::Comment {
            trim_left: true,
            trim_right: true,
            ..
        }
    ));
    assert!(matches!(&segments[2], Segment::Block(b) if b.trim_left && b.trim_right && b.kind == BlockKind::Tag));
}

#[test]
fn unclosed_things_are_reported_where_they_open() {
    for (src, offset, text) in [
        ("ab {{ x", 3, "`{{` is never closed"),
        ("{{ 'abc }}", 3, "never closed"),
        ("x {# y", 2, "comment"),
        ("{{ (a }}", 3, "does not match `(`"),
        ("{% raw %}never ends", 0, "endraw"),
    ] {
        let err = lexer::scan(src).expect_err(src);
        assert!(err.message.contains(text), "{src}: {}", err.message);
        if !text.contains("match") {
            assert_eq!(err.offset, offset, "{src}");
        }
    }
}

#[test]
fn numbers_ranges_and_attributes() {
    let segments = lexer::scan("{{ 1.5 }}{{ 1..3 }}{{ l.0.name }}").expect("scan");
    let kinds: Vec<Vec<Tok>> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Block(b) => Some(b.tokens.iter().map(|t| t.kind.clone()).collect()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds[0], vec![Tok::Float("1.5".into())]);
    assert_eq!(kinds[1], vec![Tok::Int(1), Tok::Punct(".."), Tok::Int(3)]);
    assert_eq!(kinds[2].len(), 5);
    assert!(lexer::scan("{{ 99999999999999999999 }}").is_err());
}

#[test]
fn line_col_counts_characters() {
    assert_eq!(lexer::line_col("ab\ncé{{", 6), (2, 3));
    assert_eq!(lexer::line_col("x", 99), (1, 2));
}

// ---------------------------------------------------------------- parser precedence

#[test]
fn pebble_precedence() {
    let vars = json!({"a": false, "b": true, "n": 3, "s": "x"});
    // `not` binds tighter than `==` in Pebble.
    assert_eq!(render("{{ not a == true }}", vars.clone()).unwrap(), "true");
    // `~` binds tighter than `|`: the filter applies to the whole concatenation.
    assert_eq!(render("{{ 'a' ~ s | upper }}", vars.clone()).unwrap(), "AX");
    // `??` binds tighter than `~` and the comparisons.
    assert_eq!(render("{{ m ?? 'd' ~ '!' }}", vars.clone()).unwrap(), "d!");
    // `is` binds looser than `==`.
    assert_eq!(render("{{ n == 3 is true }}", vars.clone()).unwrap(), "true");
    // the ternary is the loosest and nests to the right.
    assert_eq!(render("{{ a or b ? 'y' : 'n' }}", vars.clone()).unwrap(), "y");
    assert_eq!(render("{{ a ? 1 : b ? 2 : 3 }}", vars).unwrap(), "2");
}

// ---------------------------------------------------------------- env secrets

#[test]
fn env_secrets_are_base64_like_kestra() {
    assert_eq!(
        decode_env_secret("SECRET_X", Some("aHVudGVyMg==".into())).unwrap(),
        "hunter2"
    );
    assert_eq!(
        decode_env_secret("SECRET_X", Some("aHVudG\nVyMg==\n".into())).unwrap(),
        "hunter2"
    );
    assert!(
        decode_env_secret("SECRET_X", Some("%%%".into()))
            .unwrap_err()
            .contains("not valid base64")
    );
    assert!(decode_env_secret("SECRET_X", None).unwrap_err().contains("SECRET_X"));
}

// ---------------------------------------------------------------- limits

/// Runs a render that must stop with a limit error, quickly.
fn assert_limited(template: &str) {
    let started = Instant::now();
    let result = render(template, json!({"big": "x".repeat(2048)}));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{template} took {:?}",
        started.elapsed()
    );
    match result {
        Err(ExprError::Limit { .. }) => {}
        other => panic!("{template}: expected a limit error, got {other:?}"),
    }
}

#[test]
fn template_bombs_are_bounded() {
    assert_limited("{% for a in 1..10000 %}{% for b in 1..10000 %}{% endfor %}{% endfor %}");
    assert_limited("{% for a in 1..10000 %}{% for b in 1..10000 %}{{ b }}{% endfor %}{% endfor %}");
    assert_limited("{% for i in 1..10000 %}{{ big }}{{ big }}{{ big }}{% endfor %}");
    // Doubling a string with repeated `set`s grows exponentially with the template's length.
    assert_limited(&format!(
        "{{% set s = big %}}{}{{{{ s | length }}}}",
        "{% set s = s ~ s %}".repeat(12)
    ));
    assert_limited(&format!(
        "{{% set s = big %}}{}",
        "{% set s = s | replace({'x': 'xx'}) %}".repeat(12)
    ));
    assert_limited(&format!("{{% set s = [big] %}}{}", "{% set s = s + s %}".repeat(30)));
    assert_limited(&"{{ 1 }}".repeat(limits::MAX_TEMPLATE_BYTES / 7 + 1));
    assert!(
        render("{{ 1..100000 }}", json!({}))
            .unwrap_err()
            .to_string()
            .contains("limit")
    );

    // Re-processing a large value in a loop runs out of budget, whether it is wide or deep.
    let list: Vec<u32> = (0..100_000).collect();
    for (template, vars) in [
        (
            "{% for i in 1..10000 %}{{ l | toJson | length }}{% endfor %}",
            json!({"l": list}),
        ),
        (
            "{% for i in 1..10000 %}{{ w | toJson | length }}{% endfor %}",
            json!({"w": {"l": list}}),
        ),
        (
            "{% for i in 1..10000 %}{{ w ~ '' }}{% endfor %}",
            json!({"w": {"l": list}}),
        ),
    ] {
        let started = Instant::now();
        let result = render(template, vars);
        assert!(matches!(result, Err(ExprError::Limit { .. })), "{template}: {result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{template} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn operator_and_filter_chains_are_bounded_before_they_get_deep() {
    // Each chain is a tree as deep as it is long: 5,000 of them overflowed the stack.
    for chain in ["1 + ".repeat(5000) + "1", "1".to_string() + &" | upper".repeat(5000)] {
        let err = Renderer::new().check_syntax(&format!("{{{{ {chain} }}}}")).unwrap_err();
        assert!(err.to_string().contains("more than 64 operators and filters"), "{err}");
    }
    // A test thread has a 2 MiB stack, as the smallest of the daemon's threads had.
    let within = "1 + ".repeat(limits::MAX_OPERATORS) + "1";
    assert!(Renderer::new().check_syntax(&format!("{{{{ {within} }}}}")).is_ok());
}

#[test]
fn nesting_is_bounded_and_everything_within_compiles() {
    // Brackets are limited by the tokenizer, operators by the parser (two recursions per level).
    let deep = 2 * limits::MAX_NESTING + 1;
    for (open, close) in [("(", ")"), ("[", "]"), ("not ", ""), ("-", "")] {
        let t = format!("{{{{ {}1{} }}}}", open.repeat(deep), close.repeat(deep));
        assert!(
            matches!(Renderer::new().check_syntax(&t), Err(ExprError::Syntax { .. })),
            "{t}"
        );
    }
    assert!(
        Renderer::new()
            .check_syntax("{{ a ] }}")
            .unwrap_err()
            .to_string()
            .contains("unexpected `]`")
    );
    let tags = format!("{}{}", "{% if true %}".repeat(deep), "{% endif %}".repeat(deep));
    assert!(matches!(
        Renderer::new().check_syntax(&tags),
        Err(ExprError::Syntax { .. })
    ));

    // Up to the depth our parser refuses, every construct must translate into something minijinja
    // accepts (its own parser has a recursion limit): any refusal must be ours, not minijinja's.
    let constructs: Vec<(&str, &str, &str, &str)> = vec![
        ("{{ ", "(a ?? ", ")", " }}"),
        ("{{ ", "(b ? a : ", ")", " }}"),
        ("{{ ", "(b ? (", ") : 1)", " }}"),
        ("{{ ", "[", "]", " }}"),
        ("{{ ", "((", " | upper) ~ 'x')", " }}"),
        ("{{ ", "(x | default(", "))", " }}"),
        ("{{ ", "max(1, ", ")", " }}"),
        ("{{ ", "{'k': ", "}", " }}"),
        ("{{ ", "(", ").a[0]", " }}"),
        ("{{ ", "not (", ")", " }}"),
        ("{{ ", "-(", ")", " }}"),
        ("{{ ", "(a ?? b) ~ (", ")", " }}"),
        ("{{ \"", "#{ \"", "\" }", "\" }}"),
        ("", "{% if a %}{{ (a ?? (b ? 1 : 2)) }}", "{% endif %}", ""),
        ("", "{% for x in l %}{% if x %}", "{% endif %}{% endfor %}", ""),
    ];
    // Deepest tags around the deepest expressions.
    let (if_open, if_close) = (
        "{% if a %}".repeat(limits::MAX_NESTING),
        "{% endif %}".repeat(limits::MAX_NESTING),
    );
    let (ifs_then_print, print_then_endifs) = (format!("{if_open}{{{{ "), format!(" }}}}{if_close}"));
    let mut constructs = constructs;
    constructs.push((&ifs_then_print, "(b ? (", ") : 1)", &print_then_endifs));
    constructs.push((&ifs_then_print, "((", " | upper) ~ 'x')", &print_then_endifs));
    for (prefix, open, close, suffix) in constructs {
        let mut depth = 0;
        loop {
            depth += 1;
            let t = format!("{prefix}{}a{}{suffix}", open.repeat(depth), close.repeat(depth));
            match Renderer::new().check_syntax(&t) {
                Ok(()) => {
                    let _ = render(&t, json!({"a": "v", "b": true, "x": null, "l": [1]}));
                }
                Err(ExprError::Syntax { message, .. }) => {
                    assert!(
                        !message.contains("nests too deeply") && !message.contains("cannot compile"),
                        "{t}: {message}"
                    );
                    assert!(depth > 8, "{t} refused at depth {depth}: {message}");
                    break;
                }
                Err(other) => panic!("{t}: {other}"),
            }
            assert!(depth < 200, "{t}: never refused");
        }
    }
}

// ---------------------------------------------------------------- properties

/// Fragments that stress the tokenizer: delimiters, quotes, escapes, operators.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{%".to_string()),
        Just("%}".to_string()),
        Just("{#".to_string()),
        Just("#}".to_string()),
        Just("-".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("#{".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("??".to_string()),
        Just("???".to_string()),
        Just("?".to_string()),
        Just(":".to_string()),
        Just("|".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just("is not null".to_string()),
        Just("for x in".to_string()),
        Just("if".to_string()),
        Just("endif".to_string()),
        Just("endfor".to_string()),
        Just("raw".to_string()),
        Just("endraw".to_string()),
        Just("set y =".to_string()),
        Just("inputs.x".to_string()),
        Just("upper".to_string()),
        Just("default('d')".to_string()),
        Just("1".to_string()),
        Just("2.5".to_string()),
        Just("é".to_string()),
        "[a-z]{1,3}",
    ]
}

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|parts| parts.concat())
}

/// Syntactically valid Pebble expressions built from the constructs flows use.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("a".to_string()),
        Just("inputs.x".to_string()),
        Just("inputs.missing.deep".to_string()),
        Just("m['k']".to_string()),
        Just("l[0]".to_string()),
        Just("n".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("false".to_string()),
        Just("'}}{%'".to_string()),
        Just("\"q #{a} \\\" \"".to_string()),
        Just("now()".to_string()),
        (-5i64..50).prop_map(|n| n.to_string()),
        Just("2.5".to_string()),
    ];
    leaf.prop_recursive(5, 64, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| format!("({e})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} ?? {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} ??? {b}")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("{a} ? {b} : {c}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} ~ {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} + {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} / {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} == {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} < {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} contains {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a}..{b}")),
            inner.clone().prop_map(|e| format!("not {e}")),
            inner.clone().prop_map(|e| format!("-{e}")),
            inner.clone().prop_map(|e| format!("{e} | upper")),
            inner.clone().prop_map(|e| format!("{e} | length")),
            inner.clone().prop_map(|e| format!("{e} | toJson")),
            inner.clone().prop_map(|e| format!("{e} | date('yyyy-MM-dd')")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} | default({b})")),
            inner.clone().prop_map(|e| format!("{e} is null")),
            inner.clone().prop_map(|e| format!("{e} is not defined")),
            inner.clone().prop_map(|e| format!("{e} is false")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{{'k': {a}, {b}: 1}}")),
            inner.clone().prop_map(|e| format!("({e}).attr")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a})[{b}]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("max({a}, {b})")),
            inner.clone().prop_map(|e| format!("\"x #{{{e}}} y\"")),
        ]
    })
}

/// Templates around generated expressions.
fn template() -> impl Strategy<Value = String> {
    (expression(), expression(), 0..5u8).prop_map(|(a, b, shape)| match shape {
        0 => format!("{{{{ {a} }}}}"),
        1 => format!("x {{% if {a} %}}{{{{ {b} }}}}{{% else %}}-{{% endif %}} y"),
        2 => format!("{{% for v in {a} %}}{{{{ loop.index }}}}{{{{ v }}}}{{% endfor %}}"),
        3 => format!("{{% set s = {a} %}}{{{{ s ~ ({b}) }}}}"),
        _ => format!("{{{{- {a} -}}}}\n{{# c #}}{{{{ {b} }}}}"),
    })
}

fn vars() -> serde_json::Value {
    json!({"a": "v", "n": 3, "inputs": {"x": true}, "m": {"k": [1, 2]}, "l": ["z"]})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn tokenizer_never_panics_on_any_text(src in any::<String>()) {
        let _ = lexer::scan(&src);
    }

    #[test]
    fn tokenizer_never_panics_on_template_soup(src in soup()) {
        if let Ok(segments) = lexer::scan(&src) {
            // Segments tile the input in order.
            let mut at = 0;
            for s in &segments {
                let (start, end) = match s {
                    Segment::Text { start, end } | Segment::Comment { start, end, .. } | Segment::Raw { start, end, .. } => (*start, *end),
                    Segment::Block(b) => (b.start, b.end),
                };
                prop_assert_eq!(start, at);
                at = end;
            }
            prop_assert_eq!(at, src.len());
        }
    }

    #[test]
    fn rendering_soup_returns_ok_or_err(src in soup()) {
        let _ = render(&src, vars());
        let _ = Renderer::new().check_syntax(&src);
        let _ = Renderer::referenced_roots(&src);
    }

    #[test]
    fn valid_templates_translate_to_valid_minijinja(t in template()) {
        let renderer = Renderer::new();
        prop_assert!(renderer.check_syntax(&t).is_ok(), "{} -> {:?}", t, renderer.check_syntax(&t));
        match renderer.render(&t, &vars(), &NoServices, "ns", "e") {
            Ok(_) => {}
            Err(ExprError::Syntax { message, .. }) => prop_assert!(false, "{} -> syntax error at render: {}", t, message),
            Err(e) => prop_assert!(!e.to_string().contains("cannot compile"), "{} -> {}", t, e),
        }
    }
}

// ---------------------------------------------------------------- compiled-template cache

/// One renderer renders the same template many times (a Log message per execution): later
/// renders come from the cache and still see their own variables; a template that fails is
/// not kept and fails the same way again; past the cache's bound it starts over and renders on.
#[test]
fn cached_templates_render_each_call_with_its_own_variables() {
    let r = Renderer::new();
    let render_with = |t: &str, v: serde_json::Value| r.render(t, &v, &NoServices, "company.team", "exec1");
    for n in 0..3 {
        let out = render_with("decided {{ inputs.n }} {{ inputs.n + 1 }}", json!({"inputs": {"n": n}}));
        assert_eq!(out.expect("render").text, format!("decided {n} {}", n + 1));
    }
    for _ in 0..2 {
        let err = render_with("{{ inputs.missing }}", json!({"inputs": {}})).unwrap_err();
        assert!(matches!(err, ExprError::Undefined { .. }), "{err:?}");
        let err = render_with("{{ 1 + }}", json!({})).unwrap_err();
        assert!(matches!(err, ExprError::Syntax { .. }), "{err:?}");
    }
    for n in 0..2100 {
        let t = format!("{{{{ inputs.n }}}}-{n}");
        assert_eq!(
            render_with(&t, json!({"inputs": {"n": n}})).expect("render").text,
            format!("{n}-{n}")
        );
    }
    let out = render_with("decided {{ inputs.n }} {{ inputs.n + 1 }}", json!({"inputs": {"n": 7}}));
    assert_eq!(out.expect("render").text, "decided 7 8");
}

/// Large distinct templates (each well under the 256 KB limit) keep rendering correctly while
/// the cache starts over at its byte bound.
#[test]
fn large_distinct_templates_render_past_the_cache_byte_bound() {
    let r = Renderer::new();
    let filler = "x".repeat(200 * 1024);
    for n in 0..90 {
        let t = format!("{{{{ inputs.n }}}}-{n}-{filler}");
        let out = r
            .render(&t, &json!({"inputs": {"n": n}}), &NoServices, "company.team", "exec1")
            .expect("render");
        assert!(out.text.starts_with(&format!("{n}-{n}-x")), "{}", &out.text[..20]);
        assert_eq!(out.text.len(), format!("{n}-{n}-").len() + filler.len());
    }
}
