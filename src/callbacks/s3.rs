//! The `s3` logging callback: one object per batch, PUT with SigV4 (the Bedrock signer's S3
//! mode). Settings are LiteLLM's `s3_callback_params` (or a key's or team's `callback_vars`):
//! `s3_bucket_name`, `s3_region_name`, `s3_endpoint_url`, `s3_aws_access_key_id`,
//! `s3_aws_secret_access_key`, `s3_aws_session_token`, `s3_path`; credentials and region fall
//! back to `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`
//! (`AWS_DEFAULT_REGION`, else `us-east-1`).
//!
//! Object key, as LiteLLM's: `{s3_path}/{YYYY-MM-DD}/time-{HH-MM-SS-ffffff}_{id}.json` with the
//! date, time and call id of the batch's first request. The object holds the batch's
//! StandardLoggingPayloads as NDJSON, one per line (a batch of one is LiteLLM's object plus a
//! newline). With `s3_endpoint_url` (MinIO, moto, R2, ...) the URL is path-style,
//! `{endpoint}/{bucket}/{key}`, else `https://{bucket}.s3.{region}.amazonaws.com/{key}`.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Request};

use super::event::Event;
use crate::body::Body;
use crate::providers::bedrock::sigv4::{self, Credentials, HttpRequest};

/// Where a batch goes.
#[derive(Debug)]
pub struct Bucket {
    /// `{endpoint}/{bucket}` or `https://{bucket}.s3.{region}.amazonaws.com`.
    base: String,
    /// `s3_path` without surrounding slashes, percent-encoded.
    prefix: String,
    region: String,
    creds: Credentials,
}

impl Bucket {
    /// The bucket from the settings (`var`: a setting by its lower-case name, falling back to
    /// the environment); `None` without a bucket or credentials.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let bucket = var("s3_bucket_name")?;
        let region = var("s3_region_name")
            .or_else(|| var("aws_region"))
            .or_else(|| var("aws_default_region"))
            .unwrap_or_else(|| "us-east-1".into());
        let creds = Credentials {
            access_key_id: var("s3_aws_access_key_id").or_else(|| var("aws_access_key_id"))?,
            secret_access_key: var("s3_aws_secret_access_key")
                .or_else(|| var("aws_secret_access_key"))?,
            session_token: var("s3_aws_session_token").or_else(|| var("aws_session_token")),
        };
        let base = match var("s3_endpoint_url") {
            Some(e) => format!("{}/{}", e.trim().trim_end_matches('/'), encode(&bucket)),
            None => format!("https://{bucket}.s3.{region}.amazonaws.com"),
        };
        let prefix = var("s3_path").unwrap_or_default();
        Some(Self {
            base,
            prefix: encode(prefix.trim_matches('/')),
            region,
            creds,
        })
    }

    /// The object key of a batch whose first request is `first` (percent-encoded).
    pub fn key(&self, first: &Event) -> String {
        let start = first.row.start_time;
        let day_time = crate::util::clock::fmt_utc(start);
        let (day, time) = day_time.split_once(' ').unwrap_or((&day_time, ""));
        let micros = ((start.fract() * 1e6) as u32).min(999_999);
        let name = format!(
            "{day}/time-{}-{micros:06}_{}.json",
            time.replace(':', "-"),
            first.row.call_id.hyphenated()
        );
        if self.prefix.is_empty() {
            name
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// The signed PUT of `batch` (NDJSON).
    pub fn request(&self, batch: &[Arc<Event>]) -> Option<Request<Body>> {
        let first = batch.first()?;
        let mut body = Vec::with_capacity(batch.len() * 1024);
        for e in batch {
            serde_json::to_writer(&mut body, &e.payload()).ok()?;
            body.push(b'\n');
        }
        let uri = format!("{}/{}", self.base, self.key(first));
        let parsed: http::Uri = uri.parse().ok()?;
        let host = parsed.authority()?.as_str().to_string();
        let content_type = "application/x-ndjson";
        let signed = sigv4::sign_s3(
            &HttpRequest {
                method: "PUT",
                uri: &uri,
                headers: &[("host", &host), ("content-type", content_type)],
                body: &body,
            },
            &self.creds,
            &self.region,
            SystemTime::now(),
        )
        .map_err(|e| tracing::warn!(error = %e, "s3 logging callback: cannot sign"))
        .ok()?;
        let mut b = Request::builder()
            .method(Method::PUT)
            .uri(parsed)
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, content_type);
        for (k, v) in signed {
            b = b.header(k, v);
        }
        b.body(Body::full(Bytes::from(body))).ok()
    }
}

/// Percent-encode a key or bucket path (RFC 3986 unreserved characters and `/` kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn bucket(pairs: &[(&str, &str)]) -> Option<Bucket> {
        let m: HashMap<&str, &str> = pairs.iter().copied().collect();
        Bucket::from_vars(|k| m.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn urls_and_keys() {
        let creds = [
            ("s3_bucket_name", "logs"),
            ("aws_access_key_id", "AKID"),
            ("aws_secret_access_key", "s"),
        ];
        let b = bucket(&creds).unwrap();
        assert_eq!(b.base, "https://logs.s3.us-east-1.amazonaws.com");
        let mut with = creds.to_vec();
        with.extend([
            ("s3_endpoint_url", "http://127.0.0.1:9000/"),
            ("s3_path", "/tianji logs/"),
            ("s3_region_name", "eu-west-1"),
        ]);
        let b = bucket(&with).unwrap();
        assert_eq!(
            (b.base.as_str(), b.prefix.as_str(), b.region.as_str()),
            ("http://127.0.0.1:9000/logs", "tianji%20logs", "eu-west-1")
        );
        assert!(bucket(&creds[..2]).is_none(), "no secret key");
        let row = crate::spend::record::SpendRow {
            start_time: 1_764_945_045.25,
            ..Default::default()
        };
        let e = Event::new(row, false, Default::default(), None);
        let key = b.key(&e);
        assert_eq!(
            key,
            format!(
                "tianji%20logs/2025-12-05/time-14-30-45-250000_{}.json",
                e.row.call_id.hyphenated()
            )
        );
    }
}
