//! AWS Signature Version 4 for Bedrock requests, with `aws-sigv4`.
//!
//! [`sign`] returns the headers to add to a request: `authorization`, `x-amz-date` and, with
//! temporary credentials, `x-amz-security-token`. The signature covers the method, path,
//! query, the headers passed in (send them unchanged) and the SHA-256 of the body; no
//! `x-amz-content-sha256` header is added, Bedrock does not need it.
//!
//! The URI must be sent as signed: pass it already percent-encoded (see
//! [`super::model_path`]); the canonical request encodes the path once more, as Bedrock and
//! every AWS service but S3 expect. [`sign_s3`] signs for S3 (the S3 logging callback): the
//! path as given (encoded once) and the body's hash sent as `x-amz-content-sha256`.

use std::fmt;
use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;

/// AWS credentials. `Debug` shows the access key id only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `AKIA...` or, for temporary credentials, `ASIA...`.
    pub access_key_id: String,
    /// The secret key; never printed.
    pub secret_access_key: String,
    /// Set for temporary credentials (STS); sent as `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .finish()
    }
}

/// The request to sign.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The full URI, `https://host/path?query`, percent-encoded as it will be sent.
    pub uri: &'a str,
    /// Headers that will be sent and should be signed (e.g. `content-type`); `host` is taken
    /// from the URI when absent.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body as it will be sent.
    pub body: &'a [u8],
}

/// Why a request cannot be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// Bad input: an unparsable URI, an empty region or service.
    #[error("cannot sign the request, invalid input: {0}")]
    Params(String),
    /// The signer refused the request.
    #[error("cannot sign the request: {0}")]
    Signing(String),
}

/// Sign `req` with `creds` for `region` and `service` (`bedrock` for Bedrock runtime calls) at
/// `time`; returns the headers to add, names in lowercase.
pub fn sign(
    req: &HttpRequest<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    sign_with(
        req,
        creds,
        region,
        service,
        time,
        SigningSettings::default(),
    )
}

/// Sign `req` for S3 in `region`: the headers to add, `x-amz-content-sha256` among them.
pub fn sign_s3(
    req: &HttpRequest<'_>,
    creds: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, SignError> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    sign_with(req, creds, region, "s3", time, settings)
}

/// Presign a bodiless `GET` of `uri` for `service` in `region` at `time`, valid for
/// `expires_in`: the query parameters to append to it (names, values not yet encoded), the
/// signature last. RDS IAM tokens are such URLs.
pub fn presign(
    uri: &str,
    creds: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
    expires_in: std::time::Duration,
) -> Result<Vec<(&'static str, String)>, SignError> {
    let mut settings = SigningSettings::default();
    settings.signature_location = aws_sigv4::http_request::SignatureLocation::QueryParams;
    settings.expires_in = Some(expires_in);
    let req = HttpRequest {
        method: "GET",
        uri,
        headers: &[],
        body: &[],
    };
    let (_, params) = instructions(&req, creds, region, service, time, settings)?.into_parts();
    let mut params: Vec<_> = (params.into_iter())
        .map(|(k, v)| (k, v.into_owned()))
        .collect();
    params.sort_by_key(|(k, _)| *k == "X-Amz-Signature");
    Ok(params)
}

fn sign_with(
    req: &HttpRequest<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
    settings: SigningSettings,
) -> Result<Vec<(String, String)>, SignError> {
    Ok(instructions(req, creds, region, service, time, settings)?
        .headers()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect())
}

fn instructions(
    req: &HttpRequest<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
    settings: SigningSettings,
) -> Result<aws_sigv4::http_request::SigningInstructions, SignError> {
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        creds.session_token.clone(),
        None,
        "tianji",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| SignError::Params(e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.uri,
        req.headers.iter().copied(),
        SignableBody::Bytes(req.body),
    )
    .map_err(|e| SignError::Params(e.to_string()))?;
    let (instructions, _signature) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| SignError::Signing(e.to_string()))?
        .into_parts();
    Ok(instructions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's published S3 examples (single-chunk payload): a GET with a range and a PUT whose
    /// key needs encoding, signed at 2013-05-24T00:00:00Z.
    #[test]
    fn s3_signatures_match_aws_examples() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600);
        let auth = |req: &HttpRequest<'_>| {
            let h = sign_s3(req, &creds, "us-east-1", at).unwrap();
            let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            (get("authorization").unwrap(), get("x-amz-content-sha256"))
        };
        let (a, sha) = auth(&HttpRequest {
            method: "GET",
            uri: "https://examplebucket.s3.amazonaws.com/test.txt",
            headers: &[("range", "bytes=0-9")],
            body: b"",
        });
        assert!(
            a.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"),
            "{a}"
        );
        assert!(
            a.ends_with(
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            ),
            "{a}"
        );
        assert_eq!(
            sha.as_deref(),
            Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        let (a, _) = auth(&HttpRequest {
            method: "PUT",
            uri: "https://examplebucket.s3.amazonaws.com/test%24file.text",
            headers: &[
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            body: b"Welcome to Amazon S3.",
        });
        assert!(
            a.ends_with(
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{a}"
        );
    }

    #[test]
    fn debug_hides_the_secrets() {
        let c = Credentials {
            access_key_id: "AKID".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token-secret".into()),
        };
        let d = format!("{c:?}");
        assert!(d.contains("AKID"), "{d}");
        assert!(
            !d.contains("very-secret") && !d.contains("token-secret"),
            "{d}"
        );
    }
}
