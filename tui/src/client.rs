//! gRPC connection to a tollgated: one channel, a bearer token on every call.

use std::str::FromStr;

use tollgate_proto::v1::{
    audit_client::AuditClient, auth_client::AuthClient, executions_client::ExecutionsClient, flows_client::FlowsClient,
};
use tollgate_proto::v1::{kv_client::KvClient, secrets_client::SecretsClient};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// Default daemon address (PRODUCT.md).
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:28080";

/// Adds `authorization: Bearer <token>` to every request.
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

pub type Authed = InterceptedService<Channel, BearerToken>;

/// The four API clients sharing one HTTP/2 connection.
#[derive(Clone)]
pub struct Clients {
    pub executions: ExecutionsClient<Authed>,
    pub flows: FlowsClient<Authed>,
    pub audit: AuditClient<Authed>,
    pub auth: AuthClient<Authed>,
    pub kv: KvClient<Authed>,
    pub secrets: SecretsClient<Authed>,
    pub server: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid server address `{0}`: {1}")]
    BadAddress(String, String),
    #[error("cannot connect to {0}: {1} (is tollgated running? start it with `tollgated serve`)")]
    Unreachable(String, String),
    #[error("the token contains characters that cannot be sent in a header")]
    BadToken,
}

/// Where to connect and with which token.
#[derive(Debug, Clone)]
pub struct Connection {
    pub server: String,
    pub token: Option<String>,
}

impl Connection {
    fn endpoint(&self) -> Result<Endpoint, ConnectError> {
        Endpoint::from_str(&self.server)
            .map_err(|e| ConnectError::BadAddress(self.server.clone(), e.to_string()))
            .map(|e| e.connect_timeout(std::time::Duration::from_secs(5)).tcp_nodelay(true))
    }

    fn interceptor(&self) -> Result<BearerToken, ConnectError> {
        match &self.token {
            None => Ok(BearerToken(None)),
            Some(t) => format!("Bearer {t}")
                .parse()
                .map(|v| BearerToken(Some(v)))
                .map_err(|_| ConnectError::BadToken),
        }
    }

    /// Connects now; fails fast when the daemon is not there.
    pub async fn connect(&self) -> Result<Clients, ConnectError> {
        let channel = self
            .endpoint()?
            .connect()
            .await
            .map_err(|e| ConnectError::Unreachable(self.server.clone(), source_chain(&e)))?;
        self.clients(channel)
    }

    /// A channel that connects on first use and reconnects after failures (for the console).
    pub fn connect_lazy(&self) -> Result<Clients, ConnectError> {
        let channel = self.endpoint()?.connect_lazy();
        self.clients(channel)
    }

    fn clients(&self, channel: Channel) -> Result<Clients, ConnectError> {
        let i = self.interceptor()?;
        Ok(Clients {
            executions: ExecutionsClient::with_interceptor(channel.clone(), i.clone())
                .max_decoding_message_size(64 * 1024 * 1024),
            flows: FlowsClient::with_interceptor(channel.clone(), i.clone()),
            audit: AuditClient::with_interceptor(channel.clone(), i.clone()),
            auth: AuthClient::with_interceptor(channel.clone(), i.clone()),
            kv: KvClient::with_interceptor(channel.clone(), i.clone()),
            secrets: SecretsClient::with_interceptor(channel, i),
            server: self.server.clone(),
        })
    }
}

/// An error and its causes on one line (tonic's transport errors hide the useful part in sources).
pub fn source_chain(e: &dyn std::error::Error) -> String {
    tollgate_daemon::engine::error_chain(e)
}
