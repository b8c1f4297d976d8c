//! TLS to the database. Operators write libpq's `sslmode` and `sslrootcert` in the store URL;
//! tokio-postgres knows only `disable|prefer|require` and reads no certificate, so both are taken
//! out of the URL here and turned into a rustls client, with libpq's meaning:
//!
//! - `disable`: plain TCP.
//! - `prefer` (the default): TLS when the server offers it, else plain; the certificate is not
//!   checked (unless `sslrootcert` is given, as below).
//! - `require`: TLS or no connection; the certificate is not checked unless `sslrootcert` is
//!   given, which makes it `verify-ca`.
//! - `verify-ca`: the server's certificate must chain to `sslrootcert`.
//! - `verify-full`: and it must name the host the URL connects to.
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the bundled Mozilla roots.
//! Client certificates (`sslcert`, `sslkey`) are refused by name: not supported.

use std::path::Path;
use std::sync::Arc;

use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// What the URL asked for, with the URL left for tokio-postgres.
pub(crate) struct DbTls {
    /// The URL without `sslrootcert` and with `sslmode` as tokio-postgres knows it.
    pub url: String,
    pub mode: SslMode,
    /// `None` with `sslmode=disable`.
    pub connector: Option<MakeRustlsConnect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Encrypted, certificate not checked.
    Nothing,
    /// Chains to the roots; any name.
    Chain,
    /// Chains to the roots and names the host.
    Full,
}

/// Reads `sslmode`/`sslrootcert` out of `url` (URL or `key=value` form). The error says which
/// parameter is wrong and why.
pub(crate) fn from_url(url: &str) -> Result<DbTls, String> {
    let (mut params, rebuild) = split_params(url);
    let mut take = |name: &str| {
        let i = params.iter().position(|(k, _)| k.eq_ignore_ascii_case(name))?;
        Some(params.remove(i).1)
    };
    let sslmode = take("sslmode").unwrap_or_else(|| "prefer".into());
    let root = take("sslrootcert");
    for refused in ["sslcert", "sslkey", "sslpassword", "sslcrl"] {
        if take(refused).is_some() {
            return Err(format!(
                "`{refused}` is not supported (client certificates and CRLs); use a password or trust"
            ));
        }
    }
    let (mode, check) = match sslmode.to_ascii_lowercase().as_str() {
        "disable" => (SslMode::Disable, None),
        "allow" | "prefer" => (SslMode::Prefer, Some(Check::Nothing)),
        "require" => (SslMode::Require, Some(Check::Nothing)),
        "verify-ca" => (SslMode::Require, Some(Check::Chain)),
        "verify-full" => (SslMode::Require, Some(Check::Full)),
        other => {
            return Err(format!(
                "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
            ));
        }
    };
    let check = match (check, &root) {
        // As libpq: a root certificate given with `prefer`/`require` is checked.
        (Some(Check::Nothing), Some(_)) => Some(Check::Chain),
        (Some(Check::Chain | Check::Full), None) => {
            return Err(format!(
                "sslmode `{sslmode}` needs sslrootcert=PATH (a PEM file of CA certificates) or sslrootcert=system"
            ));
        }
        (c, _) => c,
    };
    let mode_name = match mode {
        SslMode::Disable => "disable",
        SslMode::Require => "require",
        _ => "prefer",
    };
    params.push(("sslmode".into(), mode_name.into()));
    let connector = match check {
        None => None,
        Some(check) => Some(MakeRustlsConnect::new(client_config(check, root.as_deref())?)),
    };
    Ok(DbTls {
        url: rebuild(&params),
        mode,
        connector,
    })
}

type Rebuild = Box<dyn Fn(&[(String, String)]) -> String>;

/// The parameters of a URL (`?a=b&c=d`) or of a `key=value key=value` string, and how to put
/// the string back together with other parameters.
fn split_params(url: &str) -> (Vec<(String, String)>, Rebuild) {
    let pair = |kv: &str| match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (kv.to_string(), String::new()),
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let params = query.split('&').filter(|s| !s.is_empty()).map(pair).collect();
        let base = base.to_string();
        (
            params,
            Box::new(move |p| {
                let q: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{base}?{}", q.join("&"))
            }),
        )
    } else {
        let params = url.split_whitespace().map(pair).collect();
        (
            params,
            Box::new(|p| {
                let q: Vec<String> = p.iter().map(|(k, v)| format!("{k}={v}")).collect();
                q.join(" ")
            }),
        )
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(check: Check, root: Option<&str>) -> Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(NoCheck(provider.signature_verification_algorithms)),
        Check::Chain | Check::Full => {
            let roots = Arc::new(roots(root.unwrap_or("system"))?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("sslrootcert: {e}"))?;
            if check == Check::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn roots(root: &str) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if root == "system" {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(Path::new(root))
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("sslrootcert {root}: cannot read PEM certificates: {e}"))?;
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("sslrootcert {root}: no CA certificate in the file"));
    }
    Ok(store)
}

/// `sslmode=prefer|require` without a root certificate: encrypted, but anyone may answer (as
/// libpq). The handshake's signatures are still checked.
#[derive(Debug)]
struct NoCheck(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a root; the name is not looked at. rustls checks
/// the chain before the name, so a name error means the chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_parameters_are_taken_out_of_the_url() {
        let t = from_url("postgres://u@h/db?sslmode=require&application_name=x").unwrap();
        assert_eq!(t.url, "postgres://u@h/db?application_name=x&sslmode=require");
        assert!(matches!(t.mode, SslMode::Require));
        assert!(t.connector.is_some());
        let t = from_url("postgres://u@h/db").unwrap();
        assert_eq!(t.url, "postgres://u@h/db?sslmode=prefer");
        let t = from_url("host=h user=u sslmode=disable").unwrap();
        assert_eq!(t.url, "host=h user=u sslmode=disable");
        assert!(t.connector.is_none());
        let t = from_url("postgres://u@h/db?sslmode=verify-full&sslrootcert=system").unwrap();
        assert!(!t.url.contains("sslrootcert"), "{}", t.url);
        assert!(t.url.ends_with("sslmode=require"), "{}", t.url);
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        let err = |u: &str| from_url(u).err().unwrap_or_default();
        assert!(err("postgres://h/db?sslmode=verify-full").contains("needs sslrootcert"));
        assert!(err("postgres://h/db?sslmode=sometimes").contains("sslmode `sometimes`"));
        assert!(err("postgres://h/db?sslcert=/c.pem").contains("`sslcert` is not supported"));
        assert!(err("postgres://h/db?sslmode=verify-ca&sslrootcert=/nonexistent.pem").contains("/nonexistent.pem"));
    }
}
