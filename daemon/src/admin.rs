//! `tollgated admin`: users, groups, role bindings and tokens. Directly on the data dir while the
//! daemon is stopped; while it runs, redb locks the file, so the same commands go through the
//! daemon's admin API (`/admin/v1/…`) with an admin token from `TOLLGATE_TOKEN`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::{GroupInfo, LOCAL_ADMIN_CLI, Manager, TokenInfo, parse_expiry};
use crate::engine::ids::now_ms;
use crate::http::admin::{AddGroup, AddUser, CreateToken, CreatedToken, RoleChange};
use crate::store::{Binding, Store, StoreError, UserRecord};

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Directory holding tollgate.redb (default: the same as `tollgated serve`).
    #[arg(long, env = "TOLLGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A running daemon whose admin API to use (needs an admin token in TOLLGATE_TOKEN).
    /// Used when given without --data-dir, or when the daemon holds the data dir's lock.
    #[arg(long, env = "TOLLGATE_SERVER")]
    pub server: Option<String>,
    /// The store to change directly: `redb` (in --data-dir, the default) or the PostgreSQL
    /// database the daemons use (allowed while they run).
    #[arg(long, env = "TOLLGATE_STORE", default_value = "redb")]
    pub store: crate::store::StoreSpec,
    /// PEM file of the CA that signed an `https://` daemon's certificate (besides the system's).
    #[arg(long, env = "TOLLGATE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Users (by e-mail).
    #[command(subcommand)]
    User(UserCommand),
    /// Groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Role bindings on namespace prefixes.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user, optionally in groups (created when missing).
    Add {
        email: String,
        #[arg(long = "group")]
        groups: Vec<String>,
    },
    /// Every user and their groups.
    List,
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Add an empty group.
    Add { name: String },
    /// Every group and its members.
    List,
}

#[derive(Args, Debug)]
pub struct BindingArgs {
    #[arg(long, conflicts_with_all = ["group", "flows_of"], required_unless_present_any = ["group", "flows_of"])]
    user: Option<String>,
    #[arg(long, conflicts_with = "flows_of")]
    group: Option<String>,
    /// The flows of this namespace (and its children): lets them read, start subflows in or write
    /// KV of `--namespace` (roles viewer, operator, admin), beyond their own namespace.
    #[arg(long = "flows-of")]
    flows_of: Option<String>,
    /// viewer, operator or admin.
    #[arg(long)]
    role: String,
    /// Namespace prefix (`hr` covers `hr.payroll`); `*` = every namespace.
    #[arg(long)]
    namespace: String,
}

impl BindingArgs {
    fn change(&self) -> RoleChange {
        RoleChange {
            user: self.user.clone(),
            group: self.group.clone(),
            flows: self.flows_of.clone(),
            role: self.role.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Grant viewer, operator or admin on a namespace prefix (or metrics, on `*` only: reads /metrics).
    Bind(BindingArgs),
    /// Take a granted role back.
    Unbind(BindingArgs),
    /// Every binding.
    List,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; prints only the token, once (only a salted hash is kept).
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "default")]
        name: String,
        /// Lifetime: 90d, 12h or an ISO-8601 duration (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Every token: id, user, name, dates, status (never the token itself).
    List,
    /// Revoke a token by id (or by its full text); calls with it fail from now on.
    Revoke { id: String },
}

/// The same default as `tollgated serve --data-dir`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("tollgate")
}

/// Where a running daemon says it listens: `DIR/tollgated.addr`, written at start.
const ENDPOINT_FILE: &str = "tollgated.addr";

/// Records the bound address in the data dir so `tollgated admin` can find the daemon that holds
/// the lock. A failure only costs that convenience, so it is logged, not fatal.
pub fn write_endpoint(data_dir: &Path, scheme: &str, addr: SocketAddr) {
    let host = if addr.ip().is_unspecified() {
        if addr.is_ipv4() {
            "127.0.0.1".to_string()
        } else {
            "[::1]".to_string()
        }
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let url = format!("{scheme}://{host}:{}\n", addr.port());
    if let Err(e) = std::fs::write(data_dir.join(ENDPOINT_FILE), url) {
        tracing::warn!(error = %e, "cannot record the daemon's address in the data dir");
    }
}

fn read_endpoint(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join(ENDPOINT_FILE))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The admin API of a running daemon.
struct Remote {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Remote {
    fn new(server: &str, ca_cert: Option<&Path>) -> anyhow::Result<Remote> {
        let token = std::env::var("TOLLGATE_TOKEN")
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .with_context(|| format!("going through the daemon at {server} needs an admin token in TOLLGATE_TOKEN"))?;
        let base = if server.contains("://") {
            server.trim_end_matches('/').to_string()
        } else {
            format!("http://{}", server.trim_end_matches('/'))
        };
        Ok(Remote {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")?,
            client: http_client(ca_cert)?,
            base,
            token,
        })
    }

    fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        let url = format!("{}/admin/v1/{path}", self.base);
        self.runtime.block_on(async {
            let mut req = self.client.request(method, &url).bearer_auth(&self.token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req
                .send()
                .await
                .with_context(|| format!("cannot reach the daemon at {}", self.base))?;
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_str(&text).with_context(|| format!("unexpected answer from {url}: {text}"));
            }
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or(text);
            if status == reqwest::StatusCode::UNAUTHORIZED {
                bail!("the daemon at {} refused the token in TOLLGATE_TOKEN", self.base);
            }
            bail!("{message}")
        })
    }
}

fn http_client(ca_cert: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
        let ca = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        builder = builder.add_root_certificate(ca);
    }
    builder.build().context("cannot build the HTTP client")
}

/// Where the commands run: on the data file, or through the running daemon.
enum Backend {
    Local(Manager),
    Remote(Remote),
}

fn to_value<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

impl Backend {
    fn open(args: &AdminArgs) -> anyhow::Result<Backend> {
        if let crate::store::StoreSpec::Postgres(url) = &args.store {
            return Ok(Backend::Local(Manager::new(Store::open_postgres(url)?, local_actor())));
        }
        let data_dir = match (&args.data_dir, &args.server) {
            (None, Some(server)) => return Ok(Backend::Remote(Remote::new(server, args.ca_cert.as_deref())?)),
            (Some(d), _) => d.clone(),
            (None, None) => default_data_dir(),
        };
        match Store::open(&data_dir) {
            Ok(store) => Ok(Backend::Local(Manager::new(store, local_actor()))),
            Err(StoreError::Open {
                cause: redb::DatabaseError::DatabaseAlreadyOpen,
                ..
            }) => {
                let server = args
                    .server
                    .clone()
                    .or_else(|| read_endpoint(&data_dir))
                    .unwrap_or_else(|| "http://127.0.0.1:28080".to_string());
                if std::env::var("TOLLGATE_TOKEN").map_or(true, |t| t.trim().is_empty()) {
                    bail!(
                        "the daemon is running on {dir} (it holds the lock on tollgate.redb): stop it, or let this \
                         command go through its admin API by setting TOLLGATE_TOKEN to an admin's token \
                         (daemon address: {server}; change it with --server URL)",
                        dir = data_dir.display()
                    );
                }
                Ok(Backend::Remote(Remote::new(&server, args.ca_cert.as_deref())?))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn add_user(&self, email: &str, groups: &[String]) -> anyhow::Result<UserRecord> {
        match self {
            Backend::Local(m) => Ok(m.add_user(email, groups)?),
            Backend::Remote(r) => r.call(
                reqwest::Method::POST,
                "users",
                to_value(&AddUser {
                    email: email.into(),
                    groups: groups.to_vec(),
                }),
            ),
        }
    }

    fn users(&self) -> anyhow::Result<Vec<UserRecord>> {
        match self {
            Backend::Local(m) => Ok(m.users()?),
            Backend::Remote(r) => r.call(reqwest::Method::GET, "users", None),
        }
    }

    fn add_group(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Backend::Local(m) => Ok(m.add_group(name)?),
            Backend::Remote(r) => r
                .call::<GroupInfo>(
                    reqwest::Method::POST,
                    "groups",
                    to_value(&AddGroup { name: name.into() }),
                )
                .map(|_| ()),
        }
    }

    fn groups(&self) -> anyhow::Result<Vec<GroupInfo>> {
        match self {
            Backend::Local(m) => Ok(m.groups()?),
            Backend::Remote(r) => r.call(reqwest::Method::GET, "groups", None),
        }
    }

    fn change_role(&self, c: RoleChange, bind: bool) -> anyhow::Result<Binding> {
        match self {
            Backend::Local(m) => {
                let subject = c.subject().map_err(anyhow::Error::msg)?;
                Ok(if bind {
                    m.bind(&subject, &c.role, &c.namespace)?
                } else {
                    m.unbind(&subject, &c.role, &c.namespace)?
                })
            }
            Backend::Remote(r) => {
                let method = if bind {
                    reqwest::Method::POST
                } else {
                    reqwest::Method::DELETE
                };
                r.call(method, "roles", to_value(&c))
            }
        }
    }

    fn bindings(&self) -> anyhow::Result<Vec<Binding>> {
        match self {
            Backend::Local(m) => Ok(m.bindings()?),
            Backend::Remote(r) => r.call(reqwest::Method::GET, "roles", None),
        }
    }

    fn create_token(&self, user: &str, name: &str, expires: Option<String>) -> anyhow::Result<CreatedToken> {
        match self {
            Backend::Local(m) => {
                let expires = expires.as_deref().map(parse_expiry).transpose()?;
                let (rec, token) = m.create_token(user, name, expires)?;
                Ok(CreatedToken {
                    token,
                    info: TokenInfo::from(&rec),
                })
            }
            Backend::Remote(r) => r.call(
                reqwest::Method::POST,
                "tokens",
                to_value(&CreateToken {
                    user: user.into(),
                    name: name.into(),
                    expires,
                }),
            ),
        }
    }

    fn tokens(&self) -> anyhow::Result<Vec<TokenInfo>> {
        match self {
            Backend::Local(m) => Ok(m.tokens()?),
            Backend::Remote(r) => r.call(reqwest::Method::GET, "tokens", None),
        }
    }

    fn revoke_token(&self, id: &str) -> anyhow::Result<TokenInfo> {
        match self {
            Backend::Local(m) => Ok(m.revoke_token(id)?),
            Backend::Remote(r) => {
                // The id travels in the path: keep only the id part of a pasted token.
                let id = id
                    .trim()
                    .strip_prefix("tg_")
                    .and_then(|rest| rest.split_once('_').map(|(id, _)| id))
                    .unwrap_or(id.trim());
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                    bail!("no token with id `{id}` (see `tollgated admin token list`)");
                }
                r.call(reqwest::Method::DELETE, &format!("tokens/{id}"), None)
            }
        }
    }
}

/// Changes made on the data file are audited as `admin-cli`, with the OS account when known.
fn local_actor() -> String {
    match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(u) if !u.trim().is_empty() => format!("{LOCAL_ADMIN_CLI} ({})", u.trim()),
        _ => LOCAL_ADMIN_CLI.to_string(),
    }
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn shown_namespace(ns: &str) -> &str {
    if ns.is_empty() { "*" } else { ns }
}

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let b = Backend::open(&args)?;
    let json = args.output == Output::Json;
    match args.command {
        AdminCommand::User(UserCommand::Add { email, groups }) => {
            let u = b.add_user(&email, &groups)?;
            if json {
                print_json(&u)?;
            } else if u.groups.is_empty() {
                println!("user {} added", u.email);
            } else {
                println!("user {} added (groups: {})", u.email, u.groups.join(", "));
            }
        }
        AdminCommand::User(UserCommand::List) => {
            let users = b.users()?;
            if json {
                print_json(&users)?;
            } else {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| vec![u.email.clone(), u.groups.join(", "), date(u.created_ms)])
                    .collect();
                print!("{}", table(&["EMAIL", "GROUPS", "CREATED"], &rows));
            }
        }
        AdminCommand::Group(GroupCommand::Add { name }) => {
            b.add_group(&name)?;
            if json {
                print_json(&json!({"name": name.trim(), "members": []}))?;
            } else {
                println!("group {} added", name.trim());
            }
        }
        AdminCommand::Group(GroupCommand::List) => {
            let groups = b.groups()?;
            if json {
                print_json(&groups)?;
            } else {
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|g| vec![g.name.clone(), g.members.join(", ")])
                    .collect();
                print!("{}", table(&["GROUP", "MEMBERS"], &rows));
            }
        }
        AdminCommand::Role(RoleCommand::Bind(a)) => {
            let bd = b.change_role(a.change(), true)?;
            if json {
                print_json(&bd)?;
            } else {
                println!(
                    "{} {} is {} on {}",
                    bd.kind,
                    bd.subject,
                    bd.role,
                    shown_namespace(&bd.namespace)
                );
            }
        }
        AdminCommand::Role(RoleCommand::Unbind(a)) => {
            let bd = b.change_role(a.change(), false)?;
            if json {
                print_json(&bd)?;
            } else {
                println!(
                    "{} {} is no longer {} on {}",
                    bd.kind,
                    bd.subject,
                    bd.role,
                    shown_namespace(&bd.namespace)
                );
            }
        }
        AdminCommand::Role(RoleCommand::List) => {
            let bindings = b.bindings()?;
            if json {
                print_json(&bindings)?;
            } else {
                let rows: Vec<Vec<String>> = bindings
                    .iter()
                    .map(|x| {
                        vec![
                            x.kind.clone(),
                            x.subject.clone(),
                            x.role.clone(),
                            shown_namespace(&x.namespace).to_string(),
                        ]
                    })
                    .collect();
                print!("{}", table(&["KIND", "SUBJECT", "ROLE", "NAMESPACE"], &rows));
            }
        }
        AdminCommand::Token(TokenCommand::Create { user, name, expires }) => {
            let created = b.create_token(&user, &name, expires)?;
            if json {
                print_json(&created)?;
            } else {
                // Only the token on stdout, so `TOKEN=$(tollgated admin token create …)` works.
                println!("{}", created.token);
            }
        }
        AdminCommand::Token(TokenCommand::List) => {
            let tokens = b.tokens()?;
            let now = now_ms();
            if json {
                let out: Vec<serde_json::Value> = tokens
                    .iter()
                    .map(|t| {
                        let mut v = to_value(t).unwrap_or_default();
                        v["status"] = json!(t.status(now));
                        v
                    })
                    .collect();
                print_json(&out)?;
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.user.clone(),
                            t.name.clone(),
                            date(t.created_ms),
                            t.expires_ms.map(date).unwrap_or_else(|| "never".into()),
                            t.status(now).to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table(&["ID", "USER", "NAME", "CREATED", "EXPIRES", "STATUS"], &rows)
                );
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { id }) => {
            let t = b.revoke_token(&id)?;
            if json {
                print_json(&t)?;
            } else {
                println!("token {} ({} of {}) revoked", t.id, t.name, t.user);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_a_reachable_host() {
        let dir = tempfile::tempdir().unwrap();
        write_endpoint(dir.path(), "http", "0.0.0.0:28080".parse().unwrap());
        assert_eq!(read_endpoint(dir.path()).as_deref(), Some("http://127.0.0.1:28080"));
        write_endpoint(dir.path(), "http", "[::1]:9".parse().unwrap());
        assert_eq!(read_endpoint(dir.path()).as_deref(), Some("http://[::1]:9"));
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "BB"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "A    BB\nxyz  1\n");
    }
}
