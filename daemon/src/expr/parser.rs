//! Parser for the inside of Pebble blocks: expressions with Pebble's operator precedence, and
//! the statements of `{% %}` tags.
//!
//! Precedences follow Pebble's core extension plus Kestra's operators (higher binds tighter):
//! `or` 10, `and` 15, `is`/`is not`/`contains`/`in`/`not in` 20, comparisons and `equals` 30,
//! `+ -` 40, `* / %` 60, `|` (filter) 100, `~` 110, `..`/`??`/`???` 120, unary `not - +` 500.
//! The ternary `c ? a : b` is parsed only around a whole expression, as Pebble does, so it is the
//! loosest construct and nests to the right.

use super::lexer::{StrPart, Tok, Token};
use super::limits::{MAX_NESTING, MAX_OPERATORS};

/// A parse failure at a byte offset of the template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub message: String,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    pub kind: ExprKind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(String),
    Str(String),
    /// A double-quoted string with `#{ … }` parts.
    Interp(Vec<InterpPart>),
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Var(String),
    Attr(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call {
        name: String,
        args: Vec<Arg>,
    },
    Filter {
        input: Box<Expr>,
        name: String,
        args: Vec<Arg>,
    },
    Test {
        input: Box<Expr>,
        name: String,
        args: Vec<Arg>,
        negated: bool,
    },
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Pos(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `a ?? b` (`undefined_only: false`) or `a ??? b` (`true`).
    Coalesce {
        left: Box<Expr>,
        right: Box<Expr>,
        undefined_only: bool,
    },
    Ternary(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InterpPart {
    Lit(String),
    Expr(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arg {
    pub name: Option<String>,
    pub value: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Range,
    Contains,
    In,
    NotIn,
}

/// The statement inside a `{% %}` tag.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    If(Expr),
    ElseIf(Expr),
    Else,
    EndIf,
    For {
        var: String,
        iter: Expr,
    },
    EndFor,
    Set {
        name: String,
        value: Expr,
    },
    /// `{% filter upper | trim %}`: each filter with its arguments.
    Filter(Vec<(String, Vec<Arg>, usize)>),
    EndFilter,
}

/// Binary operators as Pebble ranks them.
#[derive(Debug, Clone, Copy)]
enum Infix {
    Bin(BinOp),
    Filter,
    Test,
    Coalesce { undefined_only: bool },
}

const UNARY_PRECEDENCE: u32 = 500;

pub(crate) struct Parser<'t> {
    toks: &'t [Token],
    pos: usize,
    depth: usize,
    /// Operators and filters of the outermost expression being parsed.
    operators: usize,
    /// Offset used for "unexpected end" errors: the end of the block.
    end_offset: usize,
}

type PResult<T> = Result<T, ParseError>;

impl<'t> Parser<'t> {
    pub(crate) fn new(toks: &'t [Token], end_offset: usize) -> Self {
        Parser {
            toks,
            pos: 0,
            depth: 0,
            operators: 0,
            end_offset,
        }
    }

    fn peek(&self) -> Option<&'t Token> {
        self.toks.get(self.pos)
    }

    fn peek_at(&self, n: usize) -> Option<&'t Token> {
        self.toks.get(self.pos + n)
    }

    fn offset(&self) -> usize {
        self.peek().map_or(self.end_offset, |t| t.start)
    }

    fn prev_end(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.toks.get(i))
            .map_or(self.end_offset, |t| t.end)
    }

    fn err<T>(&self, message: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            message: message.into(),
            offset: self.offset(),
        })
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Tok::Punct(q), .. }) if *q == p)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Tok::Ident(q), .. }) if q == w)
    }

    fn is_word_at(&self, n: usize, w: &str) -> bool {
        matches!(self.peek_at(n), Some(Token { kind: Tok::Ident(q), .. }) if q == w)
    }

    fn expect_punct(&mut self, p: &str) -> PResult<()> {
        if self.is_punct(p) {
            self.pos += 1;
            Ok(())
        } else {
            let found = self.describe_current();
            self.err(format!("expected `{p}`, found {found}"))
        }
    }

    fn describe_current(&self) -> String {
        match self.peek() {
            None => "the end of the block".to_string(),
            Some(t) => match &t.kind {
                Tok::Ident(w) => format!("`{w}`"),
                Tok::Int(n) => format!("`{n}`"),
                Tok::Float(f) => format!("`{f}`"),
                Tok::Str(_) => "a string".to_string(),
                Tok::Punct(p) => format!("`{p}`"),
            },
        }
    }

    /// Errors unless every token was consumed.
    pub(crate) fn finish(&self) -> PResult<()> {
        if self.pos < self.toks.len() {
            let found = self.describe_current();
            return self.err(format!("unexpected {found}"));
        }
        Ok(())
    }

    fn ident(&mut self, what: &str) -> PResult<(String, usize)> {
        match self.peek() {
            Some(Token {
                kind: Tok::Ident(w),
                start,
                ..
            }) => {
                self.pos += 1;
                Ok((w.clone(), *start))
            }
            _ => {
                let found = self.describe_current();
                self.err(format!("expected {what}, found {found}"))
            }
        }
    }

    /// A whole expression, ternary included.
    pub(crate) fn expression(&mut self) -> PResult<Expr> {
        if self.depth == 0 {
            self.operators = 0;
        }
        self.parse_expression(0)
    }

    fn parse_expression(&mut self, min_precedence: u32) -> PResult<Expr> {
        // Each level of nesting a user sees (parentheses, an operand of `??`, a ternary branch)
        // costs up to two recursions here.
        self.depth += 1;
        if self.depth > 2 * MAX_NESTING {
            return self.err(format!("expression nested too deeply (more than {MAX_NESTING} levels)"));
        }
        let result = self.parse_expression_inner(min_precedence);
        self.depth -= 1;
        result
    }

    fn parse_expression_inner(&mut self, min_precedence: u32) -> PResult<Expr> {
        let start = self.offset();
        let mut expr = if self.is_word("not") {
            self.pos += 1;
            let operand = self.parse_expression(UNARY_PRECEDENCE)?;
            Expr {
                start,
                end: operand.end,
                kind: ExprKind::Not(Box::new(operand)),
            }
        } else if self.is_punct("-") || self.is_punct("+") {
            let negative = self.is_punct("-");
            self.pos += 1;
            let operand = self.parse_expression(UNARY_PRECEDENCE)?;
            let end = operand.end;
            let kind = if negative {
                ExprKind::Neg(Box::new(operand))
            } else {
                ExprKind::Pos(Box::new(operand))
            };
            Expr { start, end, kind }
        } else {
            self.postfix()?
        };
        while let Some((infix, precedence, width)) = self.infix() {
            if precedence < min_precedence {
                break;
            }
            self.operators += 1;
            if self.operators > MAX_OPERATORS {
                return self.err(format!(
                    "expression has more than {MAX_OPERATORS} operators and filters; split it with `{{% set %}}`"
                ));
            }
            self.pos += width;
            expr = match infix {
                Infix::Filter => {
                    let (name, args, _) = self.filter_invocation()?;
                    let end = self.prev_end();
                    Expr {
                        start,
                        end,
                        kind: ExprKind::Filter {
                            input: Box::new(expr),
                            name,
                            args,
                        },
                    }
                }
                Infix::Test => {
                    let negated = self.is_word("not");
                    if negated {
                        self.pos += 1;
                    }
                    let name = self.test_name()?;
                    let args = if self.is_punct("(") {
                        self.arguments()?
                    } else {
                        Vec::new()
                    };
                    let end = self.prev_end();
                    Expr {
                        start,
                        end,
                        kind: ExprKind::Test {
                            input: Box::new(expr),
                            name,
                            args,
                            negated,
                        },
                    }
                }
                Infix::Bin(op) => {
                    let right = self.parse_expression(precedence + 1)?;
                    Expr {
                        start,
                        end: right.end,
                        kind: ExprKind::Binary(op, Box::new(expr), Box::new(right)),
                    }
                }
                Infix::Coalesce { undefined_only } => {
                    let right = self.parse_expression(precedence + 1)?;
                    Expr {
                        start,
                        end: right.end,
                        kind: ExprKind::Coalesce {
                            left: Box::new(expr),
                            right: Box::new(right),
                            undefined_only,
                        },
                    }
                }
            };
        }
        if min_precedence == 0 && self.is_punct("?") {
            self.pos += 1;
            let then = self.parse_expression(0)?;
            self.expect_punct(":")?;
            let otherwise = self.parse_expression(0)?;
            expr = Expr {
                start,
                end: otherwise.end,
                kind: ExprKind::Ternary(Box::new(expr), Box::new(then), Box::new(otherwise)),
            };
        }
        Ok(expr)
    }

    /// The binary operator at the cursor: (operator, precedence, tokens it spans).
    fn infix(&self) -> Option<(Infix, u32, usize)> {
        let tok = self.peek()?;
        Some(match &tok.kind {
            Tok::Ident(w) => match w.as_str() {
                "or" => (Infix::Bin(BinOp::Or), 10, 1),
                "and" => (Infix::Bin(BinOp::And), 15, 1),
                "is" => (Infix::Test, 20, 1),
                "contains" => (Infix::Bin(BinOp::Contains), 20, 1),
                "in" => (Infix::Bin(BinOp::In), 20, 1),
                "not" if self.is_word_at(1, "in") => (Infix::Bin(BinOp::NotIn), 20, 2),
                "equals" => (Infix::Bin(BinOp::Eq), 30, 1),
                _ => return None,
            },
            Tok::Punct(p) => match *p {
                "==" => (Infix::Bin(BinOp::Eq), 30, 1),
                "!=" => (Infix::Bin(BinOp::Ne), 30, 1),
                "<" => (Infix::Bin(BinOp::Lt), 30, 1),
                ">" => (Infix::Bin(BinOp::Gt), 30, 1),
                "<=" => (Infix::Bin(BinOp::Le), 30, 1),
                ">=" => (Infix::Bin(BinOp::Ge), 30, 1),
                "+" => (Infix::Bin(BinOp::Add), 40, 1),
                "-" => (Infix::Bin(BinOp::Sub), 40, 1),
                "*" => (Infix::Bin(BinOp::Mul), 60, 1),
                "/" => (Infix::Bin(BinOp::Div), 60, 1),
                "%" => (Infix::Bin(BinOp::Mod), 60, 1),
                "|" => (Infix::Filter, 100, 1),
                "~" => (Infix::Bin(BinOp::Concat), 110, 1),
                ".." => (Infix::Bin(BinOp::Range), 120, 1),
                "??" => (Infix::Coalesce { undefined_only: false }, 120, 1),
                "???" => (Infix::Coalesce { undefined_only: true }, 120, 1),
                _ => return None,
            },
            _ => return None,
        })
    }

    /// A test name after `is`: an identifier, or one of the literal words `null`, `true`, `false`.
    fn test_name(&mut self) -> PResult<String> {
        let (name, _) = self.ident("a test name (null, defined, empty, true, false, …)")?;
        Ok(if name == "none" { "null".to_string() } else { name })
    }

    /// `name` or `name(args)` after `|`. Returns the name, its arguments and its offset.
    fn filter_invocation(&mut self) -> PResult<(String, Vec<Arg>, usize)> {
        let (name, at) = self.ident("a filter name")?;
        let args = if self.is_punct("(") {
            self.arguments()?
        } else {
            Vec::new()
        };
        Ok((name, args, at))
    }

    /// `( [name=]expr, … )`
    fn arguments(&mut self) -> PResult<Vec<Arg>> {
        self.expect_punct("(")?;
        let mut args = Vec::new();
        while !self.is_punct(")") {
            let named = matches!(
                self.peek(),
                Some(Token {
                    kind: Tok::Ident(_),
                    ..
                })
            ) && matches!(
                self.peek_at(1),
                Some(Token {
                    kind: Tok::Punct("="),
                    ..
                })
            );
            let name = if named {
                let (n, _) = self.ident("an argument name")?;
                self.pos += 1;
                Some(n)
            } else {
                if args.iter().any(|a: &Arg| a.name.is_some()) {
                    return self.err("positional argument after a named argument");
                }
                None
            };
            let value = self.expression()?;
            args.push(Arg { name, value });
            if !self.is_punct(")") {
                self.expect_punct(",")?;
            }
        }
        self.pos += 1;
        Ok(args)
    }

    /// A primary expression followed by `.attr` and `[index]` accesses.
    fn postfix(&mut self) -> PResult<Expr> {
        let mut expr = self.primary()?;
        loop {
            if self.is_punct(".") {
                self.pos += 1;
                let name = match self.peek() {
                    Some(Token {
                        kind: Tok::Ident(w), ..
                    }) => w.clone(),
                    Some(Token { kind: Tok::Int(n), .. }) => n.to_string(),
                    _ => {
                        let found = self.describe_current();
                        return self.err(format!("expected an attribute name after `.`, found {found}"));
                    }
                };
                self.pos += 1;
                if self.is_punct("(") {
                    return self.err(format!(
                        "method calls such as `.{name}(…)` are not supported; use a filter (`| {name}`) or a function"
                    ));
                }
                let end = self.prev_end();
                expr = Expr {
                    start: expr.start,
                    end,
                    kind: ExprKind::Attr(Box::new(expr), name),
                };
            } else if self.is_punct("[") {
                self.pos += 1;
                let index = self.expression()?;
                self.expect_punct("]")?;
                let end = self.prev_end();
                expr = Expr {
                    start: expr.start,
                    end,
                    kind: ExprKind::Index(Box::new(expr), Box::new(index)),
                };
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> PResult<Expr> {
        let Some(tok) = self.peek() else {
            return self.err("expected an expression, found the end of the block");
        };
        let start = tok.start;
        let kind = match &tok.kind {
            Tok::Int(n) => {
                self.pos += 1;
                ExprKind::Int(*n)
            }
            Tok::Float(f) => {
                self.pos += 1;
                ExprKind::Float(f.clone())
            }
            Tok::Str(parts) => {
                self.pos += 1;
                self.string(parts)?
            }
            Tok::Ident(w) => {
                self.pos += 1;
                match w.as_str() {
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    "null" | "none" => ExprKind::Null,
                    _ if self.is_punct("(") => {
                        let args = self.arguments()?;
                        ExprKind::Call { name: w.clone(), args }
                    }
                    _ => ExprKind::Var(w.clone()),
                }
            }
            Tok::Punct("(") => {
                self.pos += 1;
                let inner = self.expression()?;
                self.expect_punct(")")?;
                // Keep the parenthesised span so labels and positions cover what the user wrote.
                return Ok(Expr {
                    start,
                    end: self.prev_end(),
                    kind: inner.kind,
                });
            }
            Tok::Punct("[") => {
                self.pos += 1;
                let mut items = Vec::new();
                while !self.is_punct("]") {
                    items.push(self.expression()?);
                    if !self.is_punct("]") {
                        self.expect_punct(",")?;
                    }
                }
                self.pos += 1;
                ExprKind::List(items)
            }
            Tok::Punct("{") => {
                self.pos += 1;
                let mut entries = Vec::new();
                while !self.is_punct("}") {
                    let key = self.expression()?;
                    self.expect_punct(":")?;
                    let value = self.expression()?;
                    entries.push((key, value));
                    if !self.is_punct("}") {
                        self.expect_punct(",")?;
                    }
                }
                self.pos += 1;
                ExprKind::Map(entries)
            }
            Tok::Punct(p) => {
                let hint = match *p {
                    "?" | "??" | "???" => " (an operator needs a value on its left)",
                    _ => "",
                };
                return self.err(format!("unexpected `{p}`{hint}"));
            }
        };
        Ok(Expr {
            start,
            end: self.prev_end(),
            kind,
        })
    }

    fn string(&mut self, parts: &[StrPart]) -> PResult<ExprKind> {
        if let [StrPart::Lit(s)] = parts {
            return Ok(ExprKind::Str(s.clone()));
        }
        let mut out = Vec::new();
        for part in parts {
            match part {
                StrPart::Lit(s) => out.push(InterpPart::Lit(s.clone())),
                StrPart::Interp { tokens, end, .. } => {
                    let mut inner = Parser {
                        toks: tokens,
                        pos: 0,
                        depth: self.depth,
                        operators: self.operators,
                        end_offset: end.saturating_sub(1),
                    };
                    let e = inner.expression()?;
                    inner.finish()?;
                    self.operators = inner.operators;
                    out.push(InterpPart::Expr(e));
                }
            }
        }
        Ok(ExprKind::Interp(out))
    }

    /// The statement of a `{% %}` tag.
    pub(crate) fn statement(&mut self) -> PResult<Stmt> {
        let (word, _) = self.ident("a tag name")?;
        let stmt = match word.as_str() {
            "if" => Stmt::If(self.expression()?),
            "elseif" | "elif" => Stmt::ElseIf(self.expression()?),
            "else" => Stmt::Else,
            "endif" => Stmt::EndIf,
            "for" => {
                let (var, _) = self.ident("a loop variable name")?;
                if self.is_punct(",") {
                    return self.err(
                        "Pebble loops take one variable; iterate a map's entries with `entry.key` / `entry.value`",
                    );
                }
                if !self.is_word("in") {
                    let found = self.describe_current();
                    return self.err(format!("expected `in`, found {found}"));
                }
                self.pos += 1;
                Stmt::For {
                    var,
                    iter: self.expression()?,
                }
            }
            "endfor" => Stmt::EndFor,
            "set" => {
                let (name, _) = self.ident("a variable name")?;
                self.expect_punct("=")?;
                Stmt::Set {
                    name,
                    value: self.expression()?,
                }
            }
            "filter" => {
                let mut filters = vec![self.filter_invocation()?];
                while self.is_punct("|") {
                    self.pos += 1;
                    filters.push(self.filter_invocation()?);
                }
                Stmt::Filter(filters)
            }
            "endfilter" => Stmt::EndFilter,
            "endraw" | "endverbatim" => {
                return Err(ParseError {
                    message: format!("`{{% {word} %}}` without an opening `{{% {} %}}`", &word[3..]),
                    offset: self.toks[0].start,
                });
            }
            "macro" | "endmacro" | "block" | "endblock" | "extends" | "include" | "import" | "from" | "embed"
            | "endembed" | "parallel" | "endparallel" | "cache" | "endcache" | "flush" | "autoescape"
            | "endautoescape" => {
                return Err(ParseError {
                    message: format!("the `{word}` tag is not supported in flow templates"),
                    offset: self.toks[0].start,
                });
            }
            other => {
                return Err(ParseError {
                    message: format!("unknown tag `{other}`"),
                    offset: self.toks[0].start,
                });
            }
        };
        self.finish()?;
        Ok(stmt)
    }
}
