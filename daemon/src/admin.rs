//! `tollgated admin`: users, groups, role bindings and tokens, directly on the data dir
//! (the daemon must be stopped: redb locks the file while it runs).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::audit::{self, Entry};
use crate::auth::{Role, create_token, parse_expiry};
use crate::engine::ids::now_ms;
use crate::store::{Binding, Store, StoreError, UserRecord};

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Directory holding tollgate.redb.
    #[arg(long, env = "TOLLGATE_DATA_DIR")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: AdminCommand,
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
    List,
}

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    Add { name: String },
    List,
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Grant viewer, operator or admin on a namespace prefix (`*` = every namespace).
    Bind {
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        user: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        role: String,
        #[arg(long)]
        namespace: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; prints only the token, once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "default")]
        name: String,
        /// Lifetime: 90d, 12h or an ISO-8601 duration.
        #[arg(long)]
        expires: Option<String>,
    },
    List,
    Revoke {
        id: String,
    },
}

fn open(dir: &std::path::Path) -> anyhow::Result<Store> {
    Store::open(dir).map_err(|e| match e {
        StoreError::Open {
            source: redb::DatabaseError::DatabaseAlreadyOpen,
            ..
        } => anyhow::anyhow!(
            "the daemon is running on {} (redb locks the file): stop it first",
            dir.display()
        ),
        other => anyhow::anyhow!(other),
    })
}

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let store = open(&args.data_dir)?;
    match args.command {
        AdminCommand::User(UserCommand::Add { email, groups }) => {
            if !email.contains('@') {
                bail!("`{email}` is not an e-mail address");
            }
            store.write(|w| -> anyhow::Result<()> {
                if w.user(&email)?.is_some() {
                    bail!("user `{email}` already exists");
                }
                for g in &groups {
                    w.put_group(g)?;
                }
                w.put_user(&UserRecord {
                    email: email.clone(),
                    groups: groups.clone(),
                    created_ms: now_ms(),
                })?;
                audit::append(
                    w,
                    Entry::admin(&email, "user.add", &format!("groups [{}]", groups.join(", "))),
                )?;
                Ok(())
            })?;
            println!("user {email} added");
        }
        AdminCommand::User(UserCommand::List) => {
            for u in store.read()?.users()? {
                println!("{}  [{}]", u.email, u.groups.join(", "));
            }
        }
        AdminCommand::Group(GroupCommand::Add { name }) => {
            store.write(|w| -> anyhow::Result<()> {
                if w.has_group(&name)? {
                    bail!("group `{name}` already exists");
                }
                w.put_group(&name)?;
                audit::append(w, Entry::admin(&name, "group.add", "created"))?;
                Ok(())
            })?;
            println!("group {name} added");
        }
        AdminCommand::Group(GroupCommand::List) => {
            for g in store.read()?.groups()? {
                println!("{g}");
            }
        }
        AdminCommand::Role(RoleCommand::Bind {
            user,
            group,
            role,
            namespace,
        }) => {
            let role =
                Role::parse(&role).with_context(|| format!("unknown role `{role}`: use viewer, operator or admin"))?;
            let (kind, subject) = match (user, group) {
                (Some(u), _) => ("user", u),
                (None, Some(g)) => ("group", g),
                (None, None) => bail!("name --user or --group"),
            };
            let ns = if namespace == "*" {
                String::new()
            } else {
                namespace.clone()
            };
            if !ns.is_empty() && !crate::flow::parse::valid_namespace(&ns) {
                bail!("invalid namespace `{namespace}`");
            }
            store.write(|w| -> anyhow::Result<()> {
                if kind == "user" && w.user(&subject)?.is_none() {
                    bail!("unknown user `{subject}`: add it first with `tollgated admin user add {subject}`");
                }
                if kind == "group" && !w.has_group(&subject)? {
                    bail!("unknown group `{subject}`: add it first with `tollgated admin group add {subject}`");
                }
                let b = Binding {
                    kind: kind.into(),
                    subject: subject.clone(),
                    role: role.as_str().into(),
                    namespace: ns.clone(),
                };
                w.put_binding(&b)?;
                audit::append(
                    w,
                    Entry::admin(&subject, "role.bind", &format!("{} on `{namespace}`", role.as_str())),
                )?;
                Ok(())
            })?;
            println!("{kind} {subject} is {} on {namespace}", role.as_str());
        }
        AdminCommand::Role(RoleCommand::List) => {
            for b in store.read()?.bindings()? {
                let ns = if b.namespace.is_empty() {
                    "*"
                } else {
                    b.namespace.as_str()
                };
                println!("{} {}  {}  {ns}", b.kind, b.subject, b.role);
            }
        }
        AdminCommand::Token(TokenCommand::Create { user, name, expires }) => {
            let expires = expires.map(|e| parse_expiry(&e)).transpose()?;
            let (_, token) = create_token(&store, &user, &name, expires)?;
            println!("{token}");
        }
        AdminCommand::Token(TokenCommand::List) => {
            for t in store.read()?.tokens()? {
                let state = if t.revoked_ms.is_some() {
                    "revoked"
                } else if t.expires_ms.is_some_and(|e| e <= now_ms()) {
                    "expired"
                } else {
                    "active"
                };
                println!("{}  {}  {}  {state}", t.id, t.user, t.name);
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { id }) => {
            store.write(|w| -> anyhow::Result<()> {
                let mut t = w
                    .token(&id)?
                    .with_context(|| format!("no token with id `{id}` (see `token list`)"))?;
                t.revoked_ms = Some(now_ms());
                w.put_token(&t)?;
                audit::append(w, Entry::admin(&t.user, "token.revoke", &format!("token {id}")))?;
                Ok(())
            })?;
            println!("token {id} revoked");
        }
    }
    Ok(())
}
