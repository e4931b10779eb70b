//! `rediss://` (Redis over TLS) with certificates beyond the system's roots, named as LiteLLM
//! names them after redis-py's arguments: `REDIS_SSL_CA_CERTS` (a PEM file of roots to trust),
//! `REDIS_SSL_CERTFILE` and `REDIS_SSL_KEYFILE` (a client certificate and its key, for a
//! server started with `tls-auth-clients yes`). Without them a `rediss://` server's
//! certificate must chain to a root of the system's store. rustls does the TLS.

use redis::{Client, ClientTlsConfig, RedisError, TlsCertificates};

/// The TLS files of the Redis connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    pub ca_certs: Option<String>,
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
}

impl RedisTls {
    /// The files the environment `var` names.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |n: &str| var(n).filter(|v| !v.is_empty());
        Self {
            ca_certs: var("REDIS_SSL_CA_CERTS"),
            certfile: var("REDIS_SSL_CERTFILE"),
            keyfile: var("REDIS_SSL_KEYFILE"),
        }
    }

    /// A client for `url` (no connection is made): a `rediss://` one with these files when
    /// any is set. The files are read now; a missing one is an error naming it.
    pub fn client(&self, url: &str) -> Result<Client, RedisError> {
        match self.certificates(url)? {
            Some(certs) => Client::build_with_tls(url, certs),
            None => Client::open(url),
        }
    }

    /// The certificates for `url`: `None` when it is not `rediss://` or no file is set.
    pub fn certificates(&self, url: &str) -> Result<Option<TlsCertificates>, RedisError> {
        if !url.starts_with("rediss://") || *self == Self::default() {
            return Ok(None);
        }
        let read = |path: &String| {
            std::fs::read(path).map_err(|e| {
                RedisError::from(std::io::Error::new(e.kind(), format!("{path}: {e}")))
            })
        };
        let client_tls = match (&self.certfile, &self.keyfile) {
            (Some(cert), Some(key)) => Some(ClientTlsConfig {
                client_cert: read(cert)?,
                client_key: read(key)?,
            }),
            (None, None) => None,
            _ => {
                return Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "REDIS_SSL_CERTFILE and REDIS_SSL_KEYFILE go together: set both or neither",
                )));
            }
        };
        let root_cert = self.ca_certs.as_ref().map(read).transpose()?;
        Ok(Some(TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}
