//! TLS to PostgreSQL, asked for as libpq asks for it in `database_url`'s query string:
//!
//! - `sslmode`: `disable` (never), `allow` and `prefer` (the default: TLS when the server offers
//!   it, its certificate not checked), `require` (TLS or no connection; the certificate checked
//!   as `verify-ca` when `sslrootcert` is given, as libpq does), `verify-ca` (the certificate
//!   must chain to a trusted root), `verify-full` (and name the host connected to);
//! - `sslrootcert`: a PEM file of the roots to trust, or `system` (the public web roots, also
//!   the default of the verifying modes);
//! - `sslcert` and `sslkey`: a client certificate (PEM, with its chain) and its private key.
//!
//! The options are taken out of the URL before tokio-postgres reads the rest (it knows only
//! `disable`, `prefer` and `require`); rustls does the TLS, through tokio-postgres-rustls.
//! A connection string in libpq's `key=value` form is read by tokio-postgres alone (its
//! `sslmode` of `disable`, `prefer` or `require`, certificates not checked).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the server's certificate is checked (`sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => Mode::Disable,
            "allow" => Mode::Allow,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }

    /// What tokio-postgres is told: whether TLS is tried, and whether it is a must.
    fn ssl_mode(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Allow | Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// A database URL made ready to connect: tokio-postgres's config and the TLS connector.
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
}

/// The TLS options found in a URL's query string.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    mode: Option<String>,
    root: Option<String>,
    cert: Option<String>,
    key: Option<String>,
}

/// Read `url` (a `postgres://` or `postgresql://` URL, or libpq's `key=value` form): its
/// connection options, and the TLS its `ssl*` options ask for (their files read now). The
/// error says what is wrong without repeating the URL (it may hold a password).
pub fn parse(url: &str) -> Result<Target, String> {
    let (rest, opts) = take_options(url)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| e.to_string())?;
    let mode = match &opts.mode {
        Some(m) => {
            let mode = Mode::parse(m)?;
            config.ssl_mode(mode.ssl_mode());
            mode
        }
        None => match config.get_ssl_mode() {
            SslMode::Disable => Mode::Disable,
            SslMode::Require => Mode::Require,
            _ => Mode::Prefer,
        },
    };
    let tls = client_config(mode, &opts)?;
    Ok(Target {
        config,
        tls: MakeRustlsConnect::new(tls),
    })
}

/// `url` without its `sslmode`, `sslrootcert`, `sslcert` and `sslkey` query options, and
/// those options (percent-decoded). Other forms than a URL are returned as they are.
fn take_options(url: &str) -> Result<(String, Options), String> {
    let mut opts = Options::default();
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_string(), opts));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "sslmode" => &mut opts.mode,
            "sslrootcert" => &mut opts.root,
            "sslcert" => &mut opts.cert,
            "sslkey" => &mut opts.key,
            _ => {
                kept.push(pair);
                continue;
            }
        };
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| format!("the value of {k} is not UTF-8"))?;
        *slot = Some(v.into_owned());
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, opts))
}

/// rustls's client configuration for `mode` and the certificate files in `opts`.
fn client_config(mode: Mode, opts: &Options) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    // libpq: `require` with a root certificate checks the chain, as `verify-ca`
    let mode = match mode {
        Mode::Require if opts.root.is_some() => Mode::VerifyCa,
        m => m,
    };
    let builder = match mode {
        Mode::Disable | Mode::Allow | Mode::Prefer | Mode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider))),
        Mode::VerifyCa | Mode::VerifyFull => {
            let roots = Arc::new(roots(opts.root.as_deref())?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("sslrootcert: {e}"))?;
            if mode == Mode::VerifyFull {
                builder.with_webpki_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
            }
        }
    };
    match (&opts.cert, &opts.key) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslcert {cert}: {e}"))?;
            let key_der =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("sslkey {key}: {e}"))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| format!("sslcert/sslkey: {e}"))
        }
        _ => Err("sslcert and sslkey go together: give both or neither".into()),
    }
}

/// The roots `sslrootcert` names: a PEM file's certificates, or the public web roots.
fn roots(root: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match root {
        None | Some("system") => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("sslrootcert {path}: no usable certificate in it"));
            }
        }
    }
    Ok(store)
}

/// `prefer` and `require` (without a root certificate), as libpq: the connection is encrypted,
/// the server's certificate is not checked (the handshake's signatures still are).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the certificate must chain to a trusted root and be valid now; the host name
/// it is for is not compared (rustls checks the chain first, the name last).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
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

/// Whether a failed connection failed on TLS itself: a certificate refused, or a server
/// that does not offer TLS when it is required. Trying again will not help.
pub fn refused_by_tls(e: &tokio_postgres::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        // an I/O error's source is its inner error's source: the inner one is read apart
        let inner = c
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if c.is::<rustls::Error>()
            || inner.is_some_and(|i| i.is::<rustls::Error>())
            || c.to_string().contains("server does not support TLS")
        {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(mode: &str, root: Option<&str>) -> Options {
        Options {
            mode: Some(mode.into()),
            root: root.map(Into::into),
            cert: None,
            key: None,
        }
    }

    #[test]
    fn the_ssl_options_are_taken_out_of_a_url() {
        let (rest, o) = take_options(
            "postgres://u:p%40ss@db.example:5433/app?sslmode=verify-full&connect_timeout=5&sslrootcert=%2Fetc%2Fca%20x.pem&sslcert=/c.pem&sslkey=/k.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%40ss@db.example:5433/app?connect_timeout=5"
        );
        assert_eq!(o.mode.as_deref(), Some("verify-full"));
        assert_eq!(o.root.as_deref(), Some("/etc/ca x.pem"));
        assert_eq!(o.cert.as_deref(), Some("/c.pem"));
        assert_eq!(o.key.as_deref(), Some("/k.pem"));
        let (rest, o) = take_options("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://h/db");
        assert_eq!(o.mode.as_deref(), Some("require"));
        let kv = "host=h user=u sslmode=require";
        assert_eq!(
            take_options(kv).unwrap(),
            (kv.to_string(), Options::default())
        );
    }

    #[test]
    fn every_libpq_mode_is_read_and_others_are_refused() {
        for (url, want) in [
            ("postgres://h/db", SslMode::Prefer),
            ("postgres://h/db?sslmode=disable", SslMode::Disable),
            ("postgres://h/db?sslmode=allow", SslMode::Prefer),
            ("postgres://h/db?sslmode=prefer", SslMode::Prefer),
            ("postgres://h/db?sslmode=require", SslMode::Require),
            ("postgres://h/db?sslmode=verify-ca", SslMode::Require),
            ("postgres://h/db?sslmode=verify-full", SslMode::Require),
            ("host=h sslmode=disable", SslMode::Disable),
        ] {
            let t = parse(url).map_err(|e| format!("{url}: {e}")).unwrap();
            assert_eq!(t.config.get_ssl_mode(), want, "{url}");
        }
        let e = parse("postgres://u:secret@h/db?sslmode=strict")
            .err()
            .unwrap();
        assert!(e.contains("sslmode \"strict\""), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn certificate_files_must_be_readable_and_paired() {
        let e = client_config(
            Mode::VerifyFull,
            &opts("verify-full", Some("/nonexistent/ca.pem")),
        )
        .err()
        .unwrap();
        assert!(e.starts_with("sslrootcert /nonexistent/ca.pem"), "{e}");
        let mut o = opts("require", None);
        o.cert = Some("/c.pem".into());
        let e = client_config(Mode::Require, &o).err().unwrap();
        assert!(e.contains("give both or neither"), "{e}");
        // the public roots serve the verifying modes without a file
        assert!(client_config(Mode::VerifyFull, &opts("verify-full", None)).is_ok());
        assert!(client_config(Mode::VerifyCa, &opts("verify-ca", Some("system"))).is_ok());
    }
}
