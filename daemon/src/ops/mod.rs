//! The operations layer: the only way in. Each use case (start, resume, validate, kill, flows,
//! KV, secrets, audit) takes an authenticated principal, authorizes it, records a refusal in the
//! audit log through the engine's writer, and answers with one error type ([`EngineError`], one
//! [`ErrorCode`](crate::engine::error::ErrorCode) per kind). gRPC (`api/`), REST and the approval
//! page (`http/`) only decode and encode around these calls, so they cannot drift apart.

pub mod audit_log;
mod delegations;
mod executions;
mod flows;
mod kv;
pub mod metrics;
mod page_sessions;
mod refusals;
mod webhooks;

use std::sync::Arc;

pub use delegations::NewDelegation;
pub use executions::{BulkTarget, RowSink, present, present_shared};
pub use webhooks::WebhookAnswer;

use crate::audit::Entry;
use crate::auth::{Auth, AuthError, Principal, Role};
use crate::engine::{Engine, EngineError, Result};
use crate::secrets::SecretBox;

/// Which front door a call came through (recorded with refused sign-ins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Grpc,
    Rest,
    Page,
    Admin,
}

impl Door {
    fn as_str(self) -> &'static str {
        match self {
            Door::Grpc => "grpc",
            Door::Rest => "rest",
            Door::Page => "page",
            Door::Admin => "admin",
        }
    }
}

/// What a refused call was about, for its audit record.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub namespace: String,
    pub flow_id: String,
    pub execution_id: String,
}

impl Target {
    pub fn namespace(ns: &str) -> Target {
        Target {
            namespace: ns.to_string(),
            ..Default::default()
        }
    }

    fn of(exec: &crate::engine::Execution) -> Target {
        Target {
            namespace: exec.namespace.clone(),
            flow_id: exec.flow_id.clone(),
            execution_id: exec.id.clone(),
        }
    }
}

/// The daemon's use cases behind every front door.
pub struct Ops {
    engine: Engine,
    auth: Arc<Auth>,
    secrets: Arc<SecretBox>,
    tenant: String,
    refusals: refusals::SignInRefusals,
    webhook_failures: webhooks::WebhookFailures,
}

impl Ops {
    pub fn new(engine: Engine, auth: Arc<Auth>, secrets: Arc<SecretBox>, tenant: String) -> Ops {
        Ops {
            engine,
            auth,
            secrets,
            tenant,
            refusals: refusals::SignInRefusals::default(),
            webhook_failures: webhooks::WebhookFailures::default(),
        }
    }

    /// The tenant path segment REST and the page serve (`--tenant`).
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// NOT_FOUND for a tenant this daemon does not serve, before anything else is looked at.
    pub fn check_tenant(&self, tenant: &str) -> Result<()> {
        if tenant == self.tenant {
            Ok(())
        } else {
            Err(EngineError::NotFound(format!("unknown tenant `{tenant}`")))
        }
    }

    /// The token authority, for long-lived streams that re-check their caller.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The engine's change stream and shutdown signal, for Watch and TailLogs.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Turns `authorization: Bearer …` into a principal; a refused token is audited (bounded, so
    /// a flood of bad tokens cannot flood the log) and answered UNAUTHENTICATED without saying
    /// which part was wrong.
    pub async fn authenticate(&self, authorization: Option<&str>, door: Door) -> Result<Principal> {
        // One small read of a snapshot: cheaper than a hop to the blocking pool on every call.
        match self.auth.authenticate(authorization) {
            Ok(p) => Ok(p),
            Err(AuthError::Storage) => Err(EngineError::Store(crate::store::StoreError::Storage(
                "cannot check the token".into(),
            ))),
            Err(AuthError::Unauthenticated) => {
                if let Some(suppressed) = self.refusals.admit() {
                    let entry = refusals::sign_in_entry(authorization, door.as_str(), suppressed);
                    if let Err(e) = self.engine.record(entry).await {
                        tracing::error!(error = %e, "cannot record a refused token in the audit log");
                    }
                }
                Err(EngineError::Unauthenticated("invalid or missing bearer token".into()))
            }
        }
    }

    /// PERMISSION_DENIED (recorded in the audit log) unless `p` holds `role` on `target.namespace`.
    pub async fn authorize(&self, p: &Principal, role: Role, action: &str, target: Target) -> Result<()> {
        if p.may(role, &target.namespace) {
            return Ok(());
        }
        let message = format!(
            "{} needs the {} role on namespace `{}`",
            p.user,
            role.as_str(),
            target.namespace
        );
        Err(self.refuse(p, action, target, message).await)
    }

    /// Records a refusal and returns the error to answer with.
    async fn refuse(&self, p: &Principal, action: &str, target: Target, message: String) -> EngineError {
        let entry = Entry {
            user: p.user.clone(),
            action: action.to_string(),
            namespace: target.namespace,
            flow_id: target.flow_id,
            execution_id: target.execution_id,
            result: format!("DENIED: {message}"),
            ..Default::default()
        };
        if let Err(e) = self.engine.record(entry).await {
            // The caller is refused either way; the operator must learn the record is missing.
            tracing::error!(error = %e, "cannot record a refused call in the audit log");
        }
        EngineError::PermissionDenied(message)
    }

    /// The user, group, role and token manager, for an admin of every namespace only.
    pub async fn admin_manager(&self, authorization: Option<&str>) -> Result<crate::auth::Manager> {
        let p = self.authenticate(authorization, Door::Admin).await?;
        if !p.may(Role::Admin, "") {
            let message = format!(
                "{} needs the admin role on every namespace (`*`) to manage users, groups, roles and tokens",
                p.user
            );
            return Err(self.refuse(&p, "admin", Target::default(), message).await);
        }
        let writer: Arc<dyn crate::auth::Commit> = Arc::new(self.engine.clone());
        Ok(crate::auth::Manager::through(
            self.engine.store().clone(),
            writer,
            p.user,
        ))
    }

    /// A point read in a store snapshot, where [`Engine::read_point`] runs it.
    async fn read_point<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::store::Reader) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.engine.read_point(move |e| f(&e.store().read()?)).await
    }

    /// A read in a store snapshot, off the async runtime.
    async fn read_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&crate::store::Reader) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.engine.store().clone();
        tokio::task::spawn_blocking(move || f(&store.read()?))
            .await
            .map_err(|_| EngineError::Unavailable)?
    }

    /// Refuses callers who hold `role` on no namespace at all, before any costly work on their
    /// request (parsing a flow, say).
    async fn require_somewhere(&self, p: &Principal, role: Role, action: &str) -> Result<()> {
        if p.visible_namespaces(role).is_none_or(|v| !v.is_empty()) {
            return Ok(());
        }
        let message = format!("{} holds the {} role on no namespace", p.user, role.as_str());
        Err(self.refuse(p, action, Target::default(), message).await)
    }
}
