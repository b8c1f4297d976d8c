//! Translation of a parsed Pebble template into minijinja source.
//!
//! minijinja only ever sees code this module writes: every variable lookup, operator, filter
//! and test becomes a call to a `__tg_*` helper (see `runtime.rs` and `functions.rs`), so Pebble
//! semantics (strict lookups naming the missing path, `??`, `is defined` on null, Java-style
//! arithmetic) and the render budget live in Rust rather than in minijinja's own rules.
//! Text between blocks is copied unchanged; `{% raw %}` bodies too.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::ops::Range;

use super::functions::{self, Lookup};
use super::lexer::{self, Block, BlockKind, Segment};
use super::limits::MAX_NESTING;
use super::parser::{Arg, BinOp, Expr, ExprKind, InterpPart, Parser, Stmt};

/// A translation failure at a byte offset of the Pebble template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TranslateError {
    pub message: String,
    pub offset: usize,
    /// The block (`{{ … }}` / `{% … %}`) the error is in, when known.
    pub block: Option<Range<usize>>,
}

/// A variable path a template reads, with its static prefix (`outputs.task.field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    /// Root variable then each static attribute or literal key, e.g. `["inputs", "employee"]`.
    pub path: Vec<String>,
    /// True on the left of `??`/`???`, under `is defined` or `| default`: a missing value is fine there.
    pub guarded: bool,
    /// Byte offset of the reference in the template.
    pub offset: usize,
}

/// One Pebble block and where its translation sits, to name the expression in render errors.
#[derive(Debug, Clone)]
pub(crate) struct BlockMap {
    pub src: Range<usize>,
    pub out: Range<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Translation {
    pub source: String,
    pub blocks: Vec<BlockMap>,
    pub refs: Vec<VarRef>,
    /// `secret('X')`, `kv('K')`, `appLink()` calls with literal arguments, resolved before rendering.
    pub lookups: Vec<Lookup>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    If { seen_else: bool },
    For { seen_else: bool },
    Filter,
}

impl Open {
    fn name(self) -> &'static str {
        match self {
            Open::If { .. } => "if",
            Open::For { .. } => "for",
            Open::Filter => "filter",
        }
    }
}

/// Names minijinja reserves; Pebble templates can't bind them with `set`/`for` here.
const RESERVED: &[&str] = &[
    "true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else", "loop", "self",
];

/// Prefix of every helper the translation calls; user templates may not use it.
pub(crate) const HELPER_PREFIX: &str = "__tg";

pub(crate) fn translate(src: &str) -> Result<Translation, TranslateError> {
    let segments = lexer::scan(src).map_err(|e| TranslateError {
        message: e.message,
        offset: e.offset,
        block: None,
    })?;
    let mut t = Translator {
        src,
        out: String::with_capacity(src.len() + src.len() / 2),
        blocks: Vec::new(),
        refs: Vec::new(),
        lookups: Vec::new(),
        stack: Vec::new(),
        bound: HashSet::new(),
        loop_depth: 0,
        guarded: 0,
        collect: true,
        block: 0..0,
    };
    for segment in &segments {
        t.segment(segment)?;
    }
    if let Some((open, at)) = t.stack.last() {
        return Err(TranslateError {
            message: format!(
                "`{{% {} %}}` is never closed with `{{% end{} %}}`",
                open.name(),
                open.name()
            ),
            offset: *at,
            block: None,
        });
    }
    Ok(Translation {
        source: t.out,
        blocks: t.blocks,
        refs: t.refs,
        lookups: t.lookups,
    })
}

struct Translator<'s> {
    src: &'s str,
    out: String,
    blocks: Vec<BlockMap>,
    refs: Vec<VarRef>,
    lookups: Vec<Lookup>,
    stack: Vec<(Open, usize)>,
    /// Names bound by `set` / `for`: not context variables, so not reported as references.
    bound: HashSet<String>,
    loop_depth: usize,
    /// > 0 while emitting a position where a missing value is allowed.
    guarded: usize,
    /// False while emitting the definedness checks of a guard (already recorded once).
    collect: bool,
    block: Range<usize>,
}

type TResult = Result<(), TranslateError>;

/// Offset of a block's closing `}}` / `%}` (with its `-`), where "unexpected end" errors point.
fn closing_delimiter(block: &Block) -> usize {
    block.end.saturating_sub(2 + usize::from(block.trim_right))
}

fn trim(flag: bool) -> &'static str {
    if flag { "-" } else { "" }
}

impl<'s> Translator<'s> {
    fn error(&self, message: impl Into<String>, offset: usize) -> TranslateError {
        TranslateError {
            message: message.into(),
            offset,
            block: Some(self.block.clone()),
        }
    }

    fn segment(&mut self, segment: &Segment) -> TResult {
        match segment {
            Segment::Text { start, end } => self.out.push_str(&self.src[*start..*end]),
            Segment::Comment {
                trim_left, trim_right, ..
            } => {
                let _ = write!(self.out, "{{#{} {}#}}", trim(*trim_left), trim(*trim_right));
            }
            Segment::Raw {
                body_start,
                body_end,
                open,
                close_trim,
                ..
            } => {
                let _ = write!(self.out, "{{%{} raw {}%}}", trim(open.trim_left), trim(open.trim_right));
                self.out.push_str(&self.src[*body_start..*body_end]);
                let _ = write!(self.out, "{{%{} endraw {}%}}", trim(close_trim.0), trim(close_trim.1));
            }
            Segment::Block(block) => {
                self.block = block.start..block.end;
                let out_start = self.out.len();
                match block.kind {
                    BlockKind::Print => self.print(block)?,
                    BlockKind::Tag => self.tag(block)?,
                }
                self.blocks.push(BlockMap {
                    src: block.start..block.end,
                    out: out_start..self.out.len(),
                });
            }
        }
        Ok(())
    }

    fn parse_error(&self, e: super::parser::ParseError) -> TranslateError {
        self.error(e.message, e.offset)
    }

    fn print(&mut self, block: &Block) -> TResult {
        let mut p = Parser::new(&block.tokens, closing_delimiter(block));
        if block.tokens.is_empty() {
            return Err(self.error("empty expression `{{ }}`", block.start));
        }
        let e = p.expression().map_err(|e| self.parse_error(e))?;
        p.finish().map_err(|e| self.parse_error(e))?;
        let _ = write!(self.out, "{{{{{} ", trim(block.trim_left));
        self.expr(&e)?;
        let _ = write!(self.out, " {}}}}}", trim(block.trim_right));
        Ok(())
    }

    fn open_tag(&mut self, block: &Block) {
        let _ = write!(self.out, "{{%{} ", trim(block.trim_left));
    }

    fn close_tag(&mut self, block: &Block) {
        let _ = write!(self.out, " {}%}}", trim(block.trim_right));
    }

    fn tag(&mut self, block: &Block) -> TResult {
        let mut p = Parser::new(&block.tokens, closing_delimiter(block));
        let stmt = p.statement().map_err(|e| self.parse_error(e))?;
        match stmt {
            Stmt::If(cond) => {
                self.push(Open::If { seen_else: false }, block.start)?;
                self.open_tag(block);
                self.out.push_str("if ");
                self.condition(&cond)?;
            }
            Stmt::ElseIf(cond) => {
                match self.stack.last() {
                    Some((Open::If { seen_else: false }, _)) => {}
                    Some((Open::If { seen_else: true }, _)) => {
                        return Err(self.error("`{% elseif %}` after `{% else %}`", block.start));
                    }
                    _ => return Err(self.error("`{% elseif %}` outside of an `{% if %}`", block.start)),
                }
                self.open_tag(block);
                self.out.push_str("elif ");
                self.condition(&cond)?;
            }
            Stmt::Else => {
                match self.stack.last_mut() {
                    Some((Open::If { seen_else } | Open::For { seen_else }, _)) if !*seen_else => *seen_else = true,
                    Some((Open::If { .. } | Open::For { .. }, _)) => {
                        return Err(self.error("a second `{% else %}` in the same block", block.start));
                    }
                    _ => return Err(self.error("`{% else %}` outside of an `{% if %}` or `{% for %}`", block.start)),
                }
                self.open_tag(block);
                self.out.push_str("else");
            }
            Stmt::EndIf => {
                self.pop(block, "if")?;
                self.open_tag(block);
                self.out.push_str("endif");
            }
            Stmt::For { var, iter } => {
                self.check_binding(&var, block.start)?;
                self.push(Open::For { seen_else: false }, block.start)?;
                self.open_tag(block);
                let _ = write!(self.out, "for {var} in {HELPER_PREFIX}_iter(");
                self.expr(&iter)?;
                self.out.push(')');
                self.bound.insert(var);
                self.loop_depth += 1;
            }
            Stmt::EndFor => {
                self.pop(block, "for")?;
                self.loop_depth = self.loop_depth.saturating_sub(1);
                self.open_tag(block);
                self.out.push_str("endfor");
            }
            Stmt::Set { name, value } => {
                self.check_binding(&name, block.start)?;
                self.open_tag(block);
                let _ = write!(self.out, "set {name} = ");
                self.expr(&value)?;
                self.bound.insert(name);
            }
            Stmt::Filter(filters) => {
                self.push(Open::Filter, block.start)?;
                self.open_tag(block);
                self.out.push_str("filter ");
                for (i, (name, args, at)) in filters.iter().enumerate() {
                    if i > 0 {
                        self.out.push('|');
                    }
                    let target = functions::filter_target(name).map_err(|m| self.error(m, *at))?;
                    let _ = write!(self.out, "{HELPER_PREFIX}_fl_{target}");
                    if !args.is_empty() {
                        self.out.push('(');
                        self.args(args)?;
                        self.out.push(')');
                    }
                }
            }
            Stmt::EndFilter => {
                self.pop(block, "filter")?;
                self.open_tag(block);
                self.out.push_str("endfilter");
            }
        }
        self.close_tag(block);
        Ok(())
    }

    fn push(&mut self, open: Open, at: usize) -> TResult {
        if self.stack.len() >= MAX_NESTING {
            return Err(self.error(format!("tags nested more than {MAX_NESTING} deep"), at));
        }
        self.stack.push((open, at));
        Ok(())
    }

    fn pop(&mut self, block: &Block, want: &str) -> TResult {
        match self.stack.last() {
            Some((open, _)) if open.name() == want => {
                self.stack.pop();
                Ok(())
            }
            Some((open, at)) => {
                let (line, col) = lexer::line_col(self.src, *at);
                Err(self.error(
                    format!(
                        "`{{% end{want} %}}` found while `{{% {} %}}` (line {line}, column {col}) is still open",
                        open.name()
                    ),
                    block.start,
                ))
            }
            None => Err(self.error(
                format!("`{{% end{want} %}}` without an opening `{{% {want} %}}`"),
                block.start,
            )),
        }
    }

    fn check_binding(&self, name: &str, at: usize) -> TResult {
        let ascii_ident = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ascii_ident || RESERVED.contains(&name) || name.starts_with(HELPER_PREFIX) {
            return Err(self.error(format!("`{name}` cannot be used as a variable name here"), at));
        }
        Ok(())
    }

    fn condition(&mut self, e: &Expr) -> TResult {
        let _ = write!(self.out, "{HELPER_PREFIX}_bool(");
        self.expr(e)?;
        self.out.push(')');
        Ok(())
    }

    fn quote(&mut self, s: &str) {
        quote_into(&mut self.out, s);
    }

    fn args(&mut self, args: &[Arg]) -> TResult {
        for (i, arg) in args.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            if let Some(name) = &arg.name {
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || RESERVED.contains(&name.as_str()) {
                    return Err(self.error(format!("`{name}` cannot be used as an argument name"), arg.value.start));
                }
                let _ = write!(self.out, "{name}=");
            }
            self.expr(&arg.value)?;
        }
        Ok(())
    }

    /// Emits `e` where an undefined variable is an error naming it.
    fn expr(&mut self, e: &Expr) -> TResult {
        match &e.kind {
            ExprKind::Null => self.out.push_str("none"),
            ExprKind::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            ExprKind::Int(n) => {
                let _ = write!(self.out, "{n}");
            }
            ExprKind::Float(f) => self.out.push_str(f),
            ExprKind::Str(s) => self.quote(s),
            ExprKind::Interp(parts) => {
                let _ = write!(self.out, "{HELPER_PREFIX}_cat(");
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    match part {
                        InterpPart::Lit(s) => self.quote(s),
                        InterpPart::Expr(x) => self.expr(x)?,
                    }
                }
                self.out.push(')');
            }
            ExprKind::List(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.expr(item)?;
                }
                self.out.push(']');
            }
            ExprKind::Map(entries) => {
                self.out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.expr(k)?;
                    self.out.push_str(": ");
                    self.expr(v)?;
                }
                self.out.push('}');
            }
            ExprKind::Var(_) | ExprKind::Attr(..) | ExprKind::Index(..) => self.path(e, false)?,
            ExprKind::Call { name, args } => {
                let target = functions::function_target(name).map_err(|m| self.error(m, e.start))?;
                if let Some(lookup) = functions::literal_lookup(target, args) {
                    self.lookups.push(lookup);
                }
                let _ = write!(self.out, "{HELPER_PREFIX}_fn_{target}(");
                self.args(args)?;
                self.out.push(')');
            }
            ExprKind::Filter { input, name, args } => {
                let target = functions::filter_target(name).map_err(|m| self.error(m, e.start))?;
                self.out.push_str("((");
                if target == "default" {
                    self.optional(input)?;
                } else {
                    self.expr(input)?;
                }
                let _ = write!(self.out, ")|{HELPER_PREFIX}_fl_{target}");
                if !args.is_empty() {
                    self.out.push('(');
                    self.args(args)?;
                    self.out.push(')');
                }
                self.out.push(')');
            }
            ExprKind::Test {
                input,
                name,
                args,
                negated,
            } => {
                let target = functions::test_target(name).map_err(|m| self.error(m, e.start))?;
                self.out.push('(');
                if *negated {
                    self.out.push_str("not ");
                }
                let _ = write!(self.out, "{HELPER_PREFIX}_t_{target}(");
                if target == "defined" {
                    self.optional(input)?;
                } else {
                    self.expr(input)?;
                }
                if !args.is_empty() {
                    self.out.push_str(", ");
                    self.args(args)?;
                }
                self.out.push_str("))");
            }
            ExprKind::Not(x) => {
                self.out.push_str("(not ");
                self.condition(x)?;
                self.out.push(')');
            }
            ExprKind::Neg(x) => self.call("neg", &[x])?,
            ExprKind::Pos(x) => self.call("pos", &[x])?,
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b)?,
            ExprKind::Coalesce {
                left,
                right,
                undefined_only,
            } => {
                let helper = if *undefined_only { "some_defined" } else { "some" };
                let _ = write!(self.out, "({HELPER_PREFIX}_{helper}(");
                self.optional(left)?;
                self.out.push_str(") or [");
                self.expr(right)?;
                self.out.push_str("])[0]");
            }
            ExprKind::Ternary(cond, then, otherwise) => {
                self.out.push('(');
                self.expr(then)?;
                self.out.push_str(" if ");
                self.condition(cond)?;
                self.out.push_str(" else ");
                self.expr(otherwise)?;
                self.out.push(')');
            }
        }
        Ok(())
    }

    fn call(&mut self, helper: &str, args: &[&Expr]) -> TResult {
        let _ = write!(self.out, "{HELPER_PREFIX}_{helper}(");
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.expr(a)?;
        }
        self.out.push(')');
        Ok(())
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr) -> TResult {
        let native = |op: BinOp| match op {
            BinOp::Eq => Some("=="),
            BinOp::Ne => Some("!="),
            BinOp::Lt => Some("<"),
            BinOp::Gt => Some(">"),
            BinOp::Le => Some("<="),
            BinOp::Ge => Some(">="),
            _ => None,
        };
        if let Some(sym) = native(op) {
            self.out.push_str("((");
            self.expr(a)?;
            let _ = write!(self.out, ") {sym} (");
            self.expr(b)?;
            self.out.push_str("))");
            return Ok(());
        }
        match op {
            BinOp::Or | BinOp::And => {
                self.out.push('(');
                self.condition(a)?;
                self.out.push_str(if op == BinOp::Or { " or " } else { " and " });
                self.condition(b)?;
                self.out.push(')');
                Ok(())
            }
            BinOp::Add => self.call("add", &[a, b]),
            BinOp::Sub => self.call("sub", &[a, b]),
            BinOp::Mul => self.call("mul", &[a, b]),
            BinOp::Div => self.call("div", &[a, b]),
            BinOp::Mod => self.call("mod", &[a, b]),
            BinOp::Concat => self.call("cat", &[a, b]),
            BinOp::Range => self.call("range", &[a, b]),
            BinOp::Contains => self.call("contains", &[a, b]),
            BinOp::In => self.call("contains", &[b, a]),
            BinOp::NotIn => {
                self.out.push_str("(not ");
                self.call("contains", &[b, a])?;
                self.out.push(')');
                Ok(())
            }
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => Ok(()),
        }
    }

    /// Emits `e` where a missing value is allowed: it evaluates to undefined instead of failing.
    /// A plain path is looked up leniently; any other expression is evaluated only when every
    /// path it reads is defined (Kestra catches the lookup failure anywhere in the left side).
    fn optional(&mut self, e: &Expr) -> TResult {
        self.guarded += 1;
        let result = self.optional_inner(e);
        self.guarded -= 1;
        result
    }

    fn optional_inner(&mut self, e: &Expr) -> TResult {
        match &e.kind {
            ExprKind::Var(_) | ExprKind::Attr(..) | ExprKind::Index(..) => return self.path(e, true),
            // `a ?? b ?? c` is `(a ?? b) ?? c`: a missing `b` falls through to `c`.
            ExprKind::Coalesce {
                left,
                right,
                undefined_only,
            } => {
                let helper = if *undefined_only { "some_defined" } else { "some" };
                let _ = write!(self.out, "({HELPER_PREFIX}_{helper}(");
                self.optional(left)?;
                self.out.push_str(") or [");
                self.optional(right)?;
                self.out.push_str("])[0]");
                return Ok(());
            }
            _ => {}
        }
        let mut paths = Vec::new();
        strict_paths(e, &mut paths);
        if paths.is_empty() {
            return self.expr(e);
        }
        self.out.push('(');
        self.expr(e)?;
        let _ = write!(self.out, " if {HELPER_PREFIX}_all(");
        let collect = std::mem::replace(&mut self.collect, false);
        for (i, p) in paths.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.path(p, true)?;
        }
        self.collect = collect;
        let _ = write!(self.out, ") else {HELPER_PREFIX}_undef())");
        Ok(())
    }

    /// Emits a variable path (`a.b[c]`) as one helper call that names the path when it is missing.
    fn path(&mut self, e: &Expr, optional: bool) -> TResult {
        let mut segments: Vec<&Expr> = Vec::new();
        let mut names: Vec<Option<&str>> = Vec::new();
        let mut base = e;
        loop {
            match &base.kind {
                ExprKind::Attr(inner, name) => {
                    segments.push(base);
                    names.push(Some(name.as_str()));
                    base = inner;
                }
                ExprKind::Index(inner, _) => {
                    segments.push(base);
                    names.push(None);
                    base = inner;
                }
                _ => break,
            }
        }
        segments.reverse();
        names.reverse();
        let mode = u8::from(optional);
        match &base.kind {
            ExprKind::Var(root) => {
                if root.starts_with(HELPER_PREFIX) {
                    return Err(self.error(format!("`{root}` is reserved"), base.start));
                }
                self.record(root, &segments, base.start);
                let _ = write!(self.out, "{HELPER_PREFIX}_path({mode}, ");
                self.quote(root);
            }
            _ => {
                let label = self.src.get(base.start..base.end).unwrap_or("value").to_string();
                let _ = write!(self.out, "{HELPER_PREFIX}_at({mode}, ");
                self.quote(&label);
                self.out.push_str(", ");
                self.expr(base)?;
            }
        }
        let is_loop = matches!(&base.kind, ExprKind::Var(r) if r == "loop") && self.loop_depth > 0;
        for (i, seg) in segments.iter().enumerate() {
            self.out.push_str(", ");
            match (&seg.kind, names[i]) {
                (ExprKind::Attr(..), Some(name)) => {
                    // Pebble's loop counters start at 0; minijinja's `index0`/`revindex0` are those.
                    let name = match (is_loop && i == 0, name) {
                        (true, "index") => "index0",
                        (true, "revindex") => "revindex0",
                        _ => name,
                    };
                    self.quote(name);
                }
                (ExprKind::Index(_, index), _) => self.expr(index)?,
                _ => {}
            }
        }
        self.out.push(')');
        Ok(())
    }

    /// Records the static prefix of a path rooted at a context variable.
    fn record(&mut self, root: &str, segments: &[&Expr], offset: usize) {
        if !self.collect || self.bound.contains(root) || (root == "loop" && self.loop_depth > 0) {
            return;
        }
        let mut path = vec![root.to_string()];
        for seg in segments {
            match &seg.kind {
                ExprKind::Attr(_, name) => path.push(name.clone()),
                ExprKind::Index(_, index) => match &index.kind {
                    ExprKind::Str(s) => path.push(s.clone()),
                    ExprKind::Int(n) => path.push(n.to_string()),
                    _ => break,
                },
                _ => break,
            }
        }
        self.refs.push(VarRef {
            path,
            guarded: self.guarded > 0,
            offset,
        });
    }
}

/// Paths rooted at variables that evaluating `e` reads strictly (outside nested lenient spots
/// and outside the branches a ternary may skip).
fn strict_paths<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match &e.kind {
        ExprKind::Var(_) => out.push(e),
        ExprKind::Attr(..) | ExprKind::Index(..) => {
            let mut base = e;
            while let ExprKind::Attr(inner, _) | ExprKind::Index(inner, _) = &base.kind {
                base = inner;
            }
            if matches!(base.kind, ExprKind::Var(_)) {
                out.push(e);
            } else {
                strict_paths(base, out);
            }
        }
        ExprKind::Null | ExprKind::Bool(_) | ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) => {}
        ExprKind::Interp(parts) => {
            for p in parts {
                if let InterpPart::Expr(x) = p {
                    strict_paths(x, out);
                }
            }
        }
        ExprKind::List(items) => items.iter().for_each(|x| strict_paths(x, out)),
        ExprKind::Map(entries) => entries.iter().for_each(|(k, v)| {
            strict_paths(k, out);
            strict_paths(v, out);
        }),
        ExprKind::Call { args, .. } => args.iter().for_each(|a| strict_paths(&a.value, out)),
        ExprKind::Filter { input, name, args } => {
            if name != "default" {
                strict_paths(input, out);
            }
            args.iter().for_each(|a| strict_paths(&a.value, out));
        }
        ExprKind::Test { input, name, args, .. } => {
            if name != "defined" {
                strict_paths(input, out);
            }
            args.iter().for_each(|a| strict_paths(&a.value, out));
        }
        ExprKind::Not(x) | ExprKind::Neg(x) | ExprKind::Pos(x) => strict_paths(x, out),
        ExprKind::Binary(_, a, b) => {
            strict_paths(a, out);
            strict_paths(b, out);
        }
        ExprKind::Coalesce { .. } => {}
        ExprKind::Ternary(cond, _, _) => strict_paths(cond, out),
    }
}

/// Writes `s` as a minijinja double-quoted string literal.
pub(crate) fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
