//! Vertex AI, the pure part: service-account credentials, the signed JWT assertion exchanged
//! for an access token (OAuth 2.0 JWT bearer grant), the token request and answer, and the
//! endpoint URLs of Vertex AI and the Gemini API.
//!
//! Fetching and caching tokens is the caller's: POST [`token_request_body`] to
//! [`ServiceAccount::token_uri`] as `application/x-www-form-urlencoded`, read it with
//! [`parse_token_response`], send `Authorization: Bearer <token>`, renew before `expires_in`.
//! The Gemini API (AI Studio) takes its key in the `x-goog-api-key` header instead.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};

/// The token endpoint when the credentials name none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The OAuth scope Vertex AI needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Lifetime asked for in the assertion (Google's maximum).
pub const ASSERTION_LIFETIME_SECS: u64 = 3600;

/// Why credentials cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VertexError {
    #[error("Invalid Vertex AI service account: {0}")]
    Credentials(String),
    #[error("Invalid service account private key: {0}")]
    Key(String),
    #[error("Signing the Vertex AI token assertion failed")]
    Sign,
    #[error("Vertex AI token request failed: {0}")]
    Token(String),
}

/// A Google service account key (the JSON file downloaded from the Cloud console).
#[derive(Clone)]
pub struct ServiceAccount {
    /// The account, the JWT issuer.
    pub client_email: String,
    /// Id of the key, sent as the JWT `kid`.
    pub private_key_id: String,
    /// Where assertions are exchanged for tokens (the JWT audience).
    pub token_uri: String,
    /// The project, when the file names one.
    pub project_id: Option<String>,
    key: Arc<RsaKeyPair>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    #[serde(default)]
    private_key_id: String,
    token_uri: Option<String>,
    project_id: Option<String>,
}

/// DER bytes of the PEM block labelled `label`, if the text has one.
fn pem_block(pem: &str, label: &str) -> Result<Option<Vec<u8>>, VertexError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some((_, rest)) = pem.split_once(&begin) else {
        return Ok(None);
    };
    let (body, _) = rest
        .split_once(&end)
        .ok_or_else(|| VertexError::Key(format!("no {end} line")))?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(b64)
        .map(Some)
        .map_err(|e| VertexError::Key(format!("PEM body is not base64: {e}")))
}

/// An RSA key pair from a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM.
fn key_pair(pem: &str) -> Result<RsaKeyPair, VertexError> {
    // JSON written by hand sometimes keeps `\n` escaped
    let pem = pem.replace("\\n", "\n");
    if let Some(der) = pem_block(&pem, "PRIVATE KEY")? {
        return RsaKeyPair::from_pkcs8(&der).map_err(|e| VertexError::Key(e.to_string()));
    }
    if let Some(der) = pem_block(&pem, "RSA PRIVATE KEY")? {
        return RsaKeyPair::from_der(&der).map_err(|e| VertexError::Key(e.to_string()));
    }
    Err(VertexError::Key("no PRIVATE KEY PEM block".into()))
}

impl ServiceAccount {
    /// Read a service account key file; the key is checked here, once.
    pub fn from_json(s: &str) -> Result<ServiceAccount, VertexError> {
        let raw: Raw =
            serde_json::from_str(s).map_err(|e| VertexError::Credentials(e.to_string()))?;
        if let Some(kind) = raw.kind.as_deref().filter(|k| *k != "service_account") {
            return Err(VertexError::Credentials(format!(
                "credentials of type `{kind}` are not a service account key"
            )));
        }
        let client_email = raw
            .client_email
            .filter(|e| !e.is_empty())
            .ok_or_else(|| VertexError::Credentials("client_email is missing".into()))?;
        let pem = raw
            .private_key
            .ok_or_else(|| VertexError::Credentials("private_key is missing".into()))?;
        Ok(ServiceAccount {
            client_email,
            private_key_id: raw.private_key_id,
            token_uri: raw
                .token_uri
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.into()),
            project_id: raw.project_id.filter(|p| !p.is_empty()),
            key: Arc::new(key_pair(&pem)?),
        })
    }

    /// The RS256-signed JWT asserting this account at `now_unix`, valid for an hour, asking for
    /// the `cloud-platform` scope.
    pub fn assertion(&self, now_unix: u64) -> Result<String, VertexError> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if !self.private_key_id.is_empty() {
            header["kid"] = json!(self.private_key_id);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now_unix,
            "exp": now_unix + ASSERTION_LIFETIME_SECS,
        });
        let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                jwt.as_bytes(),
                &mut sig,
            )
            .map_err(|_| VertexError::Sign)?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(jwt)
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The form body exchanging `assertion` for an access token.
pub fn token_request_body(assertion: &str) -> String {
    format!(
        "grant_type={}&assertion={}",
        form_encode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
        form_encode(assertion)
    )
}

/// `(access_token, expires_in seconds)` from the token endpoint's answer (an OAuth error
/// answer becomes [`VertexError::Token`] with its description).
pub fn parse_token_response(body: &[u8]) -> Result<(String, u64), VertexError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| VertexError::Token(format!("answer is not JSON: {e}")))?;
    if let Some(err) = v.get("error") {
        let desc = v
            .get("error_description")
            .and_then(Value::as_str)
            .or_else(|| err.as_str())
            .or_else(|| err.get("message").and_then(Value::as_str))
            .unwrap_or("unknown error");
        return Err(VertexError::Token(desc.to_string()));
    }
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| VertexError::Token("no access_token in the answer".into()))?;
    let expires = v
        .get("expires_in")
        .and_then(|e| e.as_u64().or_else(|| e.as_str()?.parse().ok()))
        .unwrap_or(ASSERTION_LIFETIME_SECS);
    Ok((token.to_string(), expires))
}

/// Scheme and host of `api_base` (a path in it is ignored), without a trailing slash.
fn origin(api_base: &str) -> &str {
    let after_scheme = api_base.find("://").map_or(0, |i| i + 3);
    match api_base[after_scheme..].find('/') {
        Some(i) => &api_base[..after_scheme + i],
        None => api_base,
    }
}

/// A Vertex AI publisher-model URL, e.g. `method` = `generateContent`,
/// `streamGenerateContent?alt=sse`, `countTokens`, `predict` (inserted verbatim). Location
/// `global` uses the global host; `api_base` replaces only the scheme and host.
pub fn vertex_url(
    location: &str,
    project: &str,
    model: &str,
    method: &str,
    api_base: Option<&str>,
) -> String {
    publisher_url(location, project, "google", model, method, api_base)
}

/// [`vertex_url`] for a partner model of `publisher` (`mistralai`: Mistral OCR, called with
/// `rawPredict`).
pub fn publisher_url(
    location: &str,
    project: &str,
    publisher: &str,
    model: &str,
    method: &str,
    api_base: Option<&str>,
) -> String {
    let host = match api_base.filter(|b| !b.is_empty()) {
        Some(b) => origin(b).to_string(),
        None if location == "global" => "https://aiplatform.googleapis.com".to_string(),
        None => format!("https://{location}-aiplatform.googleapis.com"),
    };
    format!(
        "{host}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}"
    )
}

/// A Gemini API (AI Studio) model URL; `method` as for [`vertex_url`]. `api_base` replaces the
/// default origin (a trailing slash is ignored).
pub fn gemini_url(api_base: Option<&str>, model: &str, method: &str) -> String {
    let base = api_base
        .filter(|b| !b.is_empty())
        .unwrap_or("https://generativelanguage.googleapis.com")
        .trim_end_matches('/');
    let model = model.strip_prefix("models/").unwrap_or(model);
    format!("{base}/v1beta/models/{model}:{method}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            vertex_url(
                "us-central1",
                "p",
                "gemini-2.5-pro",
                "generateContent",
                None
            ),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        assert_eq!(
            vertex_url("global", "p", "m", "countTokens", None),
            "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/m:countTokens"
        );
        assert_eq!(
            vertex_url(
                "europe-west4",
                "p",
                "m",
                "predict",
                Some("http://127.0.0.1:9/x/")
            ),
            "http://127.0.0.1:9/v1/projects/p/locations/europe-west4/publishers/google/models/m:predict"
        );
        assert_eq!(
            gemini_url(
                None,
                "models/gemini-2.5-flash",
                "streamGenerateContent?alt=sse"
            ),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            gemini_url(Some("http://localhost:8080/"), "m", "batchEmbedContents"),
            "http://localhost:8080/v1beta/models/m:batchEmbedContents"
        );
    }

    #[test]
    fn token_answers() {
        assert_eq!(
            parse_token_response(
                br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#
            ),
            Ok(("ya29.x".into(), 3599))
        );
        assert_eq!(
            parse_token_response(
                br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#
            ),
            Err(VertexError::Token("Invalid JWT Signature.".into()))
        );
        assert!(parse_token_response(b"<html>").is_err());
        assert_eq!(
            token_request_body("a.b-c_d"),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b-c_d"
        );
    }

    #[test]
    fn bad_credentials() {
        assert!(matches!(
            ServiceAccount::from_json(r#"{"type":"authorized_user","client_email":"a"}"#),
            Err(VertexError::Credentials(_))
        ));
        assert!(matches!(
            ServiceAccount::from_json(r#"{"client_email":"a","private_key":"nope"}"#),
            Err(VertexError::Key(_))
        ));
        assert!(matches!(
            ServiceAccount::from_json(
                "{\"client_email\":\"a\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n\"}"
            ),
            Err(VertexError::Key(_))
        ));
    }
}
