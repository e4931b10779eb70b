//! Fetching a URL a caller gave (RAG URL ingestion) without letting the caller reach the
//! gateway's own network (SSRF).
//!
//! Only http and https. A host on the allow-list (`rag_settings.allowed_url_hosts`: host names
//! or IP literals, no scheme, port or path; matched case-insensitively, any port) is fetched
//! as is. Any other host is refused when it is `localhost`, a name under `.localhost` or
//! `metadata.google.internal`, or when any address it resolves to is not public
//! ([`crate::util::net::not_public_ip`]: loopback, private, link-local and metadata, CGNAT,
//! unspecified, broadcast, multicast, IPv6 loopback / unique-local / link-local, IPv4-mapped
//! forms). Names are resolved in the connector's own resolver (`CheckedResolver`), which
//! makes the same decision per host and hands the connector exactly the addresses it checked,
//! so a name cannot resolve to something else between the check and the connect (DNS
//! rebinding). IP literals (which the connector does not resolve) are checked with the URL;
//! URLs are parsed the WHATWG way, so numeric hosts (`2130706433`, `0x7f.1`) are IPv4 literals
//! by then.
//!
//! Redirects (301, 302, 303, 307, 308) are followed by hand, at most `max_redirects`, each
//! new URL checked again. The whole fetch, headers and body, is bounded by `timeout`, and the
//! body by `max_bytes` (a larger `Content-Length` is refused before the body is read).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;
use url::{Host, Url};

use crate::util::net::{not_public_ip, private_name};

/// Redirects followed unless a policy says otherwise.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;

/// What the fetcher may fetch, and how much.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Hosts fetched without the address check (`rag_settings.allowed_url_hosts`): host names
    /// or IP literals (`[::1]` or `::1`), any port.
    pub allowed_hosts: Vec<String>,
    /// Largest body read.
    pub max_bytes: u64,
    /// The whole fetch: connect, redirects, headers and body.
    pub timeout: Duration,
    pub max_redirects: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allowed_hosts: Vec::new(),
            max_bytes: 50 << 20,
            timeout: Duration::from_secs(60),
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }
}

/// Why a URL was not fetched.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// The URL's host or an address it resolves to is not public.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    BadUrl(String),
    #[error("the document is larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("fetching the URL timed out")]
    TimedOut,
    /// The final answer's status (not 2xx, nor a redirect that was followed).
    #[error("the server answered {0}")]
    Status(u16),
    #[error("too many redirects")]
    TooManyRedirects,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("error reading the document: {0}")]
    Body(String),
}

impl FetchError {
    /// 400 for what the caller asked (refused, bad URL, redirect loop), 413 too large, 504
    /// timed out, 502 for what the remote server did (its status, connection, body).
    pub fn status(&self) -> StatusCode {
        match self {
            FetchError::Refused(_) | FetchError::BadUrl(_) | FetchError::TooManyRedirects => {
                StatusCode::BAD_REQUEST
            }
            FetchError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            FetchError::TimedOut => StatusCode::GATEWAY_TIMEOUT,
            FetchError::Status(_) | FetchError::Connect(_) | FetchError::Body(_) => {
                StatusCode::BAD_GATEWAY
            }
        }
    }
}

/// A successful answer: its head, and its body as it comes.
pub struct Fetched {
    /// The final URL, after redirects.
    pub url: String,
    pub content_type: Option<String>,
    /// From `Content-Disposition`, else the last segment of the final URL's path.
    pub filename: Option<String>,
    pub content_length: Option<u64>,
    /// The body: [`FetchError::TooLarge`] past `max_bytes`, [`FetchError::TimedOut`] past the
    /// fetch's deadline; ends after its first error.
    pub body: BoxStream<'static, Result<Bytes, FetchError>>,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("url", &self.url)
            .field("content_type", &self.content_type)
            .field("filename", &self.filename)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

type FetchClient = Client<HttpsConnector<HttpConnector<CheckedResolver>>, Empty<Bytes>>;

/// Fetches caller-given URLs under a [`FetchPolicy`]; built once, cheap to clone.
#[derive(Debug, Clone)]
pub struct UrlFetcher {
    client: FetchClient,
    allowed: Arc<AllowList>,
    max_bytes: u64,
    timeout: Duration,
    max_redirects: usize,
}

impl UrlFetcher {
    /// [`FetchError::BadUrl`] names an allow-list entry that is not a host name or IP literal.
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        let allowed = Arc::new(AllowList::parse(&policy.allowed_hosts)?);
        let mut http = HttpConnector::new_with_resolver(CheckedResolver {
            allowed: allowed.clone(),
        });
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(policy.timeout.min(Duration::from_secs(10))));
        let tls = super::client::tls_config()
            .map_err(|e| FetchError::Connect(format!("TLS setup: {e}")))?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(UrlFetcher {
            client,
            allowed,
            max_bytes: policy.max_bytes,
            timeout: policy.timeout,
            max_redirects: policy.max_redirects,
        })
    }

    /// GET `url`; Ok once the final (non-redirect) answer's headers are in.
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let deadline = Instant::now() + self.timeout;
        let (url, resp) = tokio::time::timeout_at(deadline, self.head(url))
            .await
            .map_err(|_| FetchError::TimedOut)??;
        let headers = resp.headers();
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::trim)
        };
        let content_length = text(header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
        if content_length.is_some_and(|n| n > self.max_bytes) {
            return Err(FetchError::TooLarge {
                max: self.max_bytes,
            });
        }
        let filename = text(header::CONTENT_DISPOSITION)
            .and_then(disposition_filename)
            .or_else(|| path_filename(url.path()));
        Ok(Fetched {
            content_type: text(header::CONTENT_TYPE).map(str::to_string),
            filename,
            content_length,
            body: capped(resp.into_body(), self.max_bytes, deadline),
            url: url.into(),
        })
    }

    /// Follow `url` to its final answer (2xx), checking every URL on the way.
    async fn head(&self, url: &str) -> Result<(Url, Response<Incoming>), FetchError> {
        let mut current = Url::parse(url).map_err(|e| bad_url(url, e))?;
        let mut redirects = 0;
        loop {
            let uri = self.check(&mut current)?;
            let mut req = Request::new(Empty::new());
            *req.uri_mut() = uri;
            let h = req.headers_mut();
            h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
            h.insert(
                header::USER_AGENT,
                HeaderValue::from_static(concat!("tianji/", env!("CARGO_PKG_VERSION"))),
            );
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| connect_error(&e))?;
            let status = resp.status();
            if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                if !status.is_success() {
                    return Err(FetchError::Status(status.as_u16()));
                }
                return Ok((current, resp));
            }
            let Some(location) = resp.headers().get(header::LOCATION) else {
                return Err(FetchError::Status(status.as_u16()));
            };
            if redirects >= self.max_redirects {
                return Err(FetchError::TooManyRedirects);
            }
            redirects += 1;
            let location = location.to_str().map_err(|_| {
                FetchError::BadUrl("a redirect's Location is not a valid URL".to_string())
            })?;
            current = current.join(location).map_err(|e| bad_url(location, e))?;
        }
    }

    /// The request URI of `url` if it may be fetched: http(s), no credentials, and a host on
    /// the allow-list, or an IP literal that is public, or a name that is not a local one (its
    /// addresses are checked by the resolver).
    fn check(&self, url: &mut Url) -> Result<Uri, FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl(format!(
                "'{url}' must be an http or https URL"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::BadUrl(format!(
                "'{url}' holds credentials; they are not sent"
            )));
        }
        url.set_fragment(None);
        let Some(host) = url.host() else {
            return Err(FetchError::BadUrl(format!("'{url}' has no host")));
        };
        if !self.allowed.allows(&host) {
            let refused = match &host {
                Host::Domain(d) => private_name(d),
                Host::Ipv4(ip) => not_public_ip((*ip).into()),
                Host::Ipv6(ip) => not_public_ip((*ip).into()),
            };
            if refused {
                return Err(refusal(&host.to_string(), None));
            }
        }
        url.as_str()
            .parse::<Uri>()
            .map_err(|e| bad_url(url.as_str(), e))
    }
}

/// The hosts fetched without the address check, normalised as URLs parse them (lowercase,
/// IDNA, IP literals canonical, a trailing dot dropped).
#[derive(Debug, Default)]
struct AllowList(Vec<Host<String>>);

impl AllowList {
    fn parse(entries: &[String]) -> Result<Self, FetchError> {
        let mut hosts = Vec::with_capacity(entries.len());
        for entry in entries {
            let e = entry.trim();
            let bracketed;
            let e = if e.contains(':')
                && !e.starts_with('[')
                && e.parse::<std::net::Ipv6Addr>().is_ok()
            {
                bracketed = format!("[{e}]");
                &bracketed
            } else {
                e
            };
            let host = match Host::parse(e) {
                Ok(Host::Domain(d)) if !d.is_empty() => {
                    Host::Domain(d.trim_end_matches('.').to_string())
                }
                Ok(h @ (Host::Ipv4(_) | Host::Ipv6(_))) => h,
                _ => {
                    return Err(FetchError::BadUrl(format!(
                        "rag_settings.allowed_url_hosts: '{entry}' is not a host name or IP \
                         address (no scheme, port or path)"
                    )));
                }
            };
            hosts.push(host);
        }
        Ok(AllowList(hosts))
    }

    fn allows(&self, host: &Host<&str>) -> bool {
        self.0.iter().any(|h| match (h, host) {
            (Host::Domain(a), Host::Domain(b)) => a == b.trim_end_matches('.'),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        })
    }

    /// Whether `name` (a host as the connector resolves it) is on the list.
    fn allows_name(&self, name: &str) -> bool {
        Host::parse(name).is_ok_and(|h| match h {
            Host::Domain(d) => self.allows(&Host::Domain(&d)),
            Host::Ipv4(ip) => self.allows(&Host::Ipv4(ip)),
            Host::Ipv6(ip) => self.allows(&Host::Ipv6(ip)),
        })
    }
}

/// The connector's resolver: resolves a name and refuses it unless it is allow-listed or every
/// address is public; the connector connects to exactly the addresses returned.
#[derive(Debug, Clone)]
struct CheckedResolver {
    allowed: Arc<AllowList>,
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = FetchError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, FetchError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), FetchError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allowed = self.allowed.clone();
        Box::pin(async move { resolve_checked(&allowed, name.as_str()).await })
    }
}

async fn resolve_checked(
    allowed: &AllowList,
    host: &str,
) -> Result<std::vec::IntoIter<SocketAddr>, FetchError> {
    let allowed = allowed.allows_name(host);
    if !allowed && private_name(host) {
        return Err(refusal(host, None));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| FetchError::Connect(format!("cannot resolve '{host}': {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(FetchError::Connect(format!(
            "'{host}' resolves to no address"
        )));
    }
    if !allowed && let Some(a) = addrs.iter().find(|a| not_public_ip(a.ip())) {
        return Err(refusal(host, Some(a.ip())));
    }
    Ok(addrs.into_iter())
}

fn refusal(host: &str, resolved: Option<std::net::IpAddr>) -> FetchError {
    let what = match resolved {
        Some(ip) => format!("'{host}' resolves to {ip}, which"),
        None => format!("'{host}'"),
    };
    FetchError::Refused(format!(
        "{what} is a private, loopback, link-local or otherwise non-public address; add the \
         host to rag_settings.allowed_url_hosts to allow it"
    ))
}

fn bad_url(url: &str, e: impl std::fmt::Display) -> FetchError {
    FetchError::BadUrl(format!("'{url}' is not a valid URL: {e}"))
}

/// A client error as a [`FetchError`]: the resolver's own (a refusal) if it is in the chain.
fn connect_error(e: &hyper_util::client::legacy::Error) -> FetchError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(f) = c.downcast_ref::<FetchError>() {
            return f.clone();
        }
        cur = c.source();
    }
    FetchError::Connect(super::error_chain(e))
}

/// `body` as a stream of chunks: an error past `max` bytes or past `deadline`.
fn capped(
    body: Incoming,
    max: u64,
    deadline: Instant,
) -> BoxStream<'static, Result<Bytes, FetchError>> {
    struct Reading {
        body: Incoming,
        read: u64,
        deadline: Pin<Box<tokio::time::Sleep>>,
        done: bool,
    }
    let start = Reading {
        body,
        read: 0,
        deadline: Box::pin(tokio::time::sleep_until(deadline)),
        done: false,
    };
    futures_util::stream::unfold(start, move |mut r| async move {
        if r.done {
            return None;
        }
        loop {
            let frame = tokio::select! {
                f = r.body.frame() => f,
                () = &mut r.deadline => {
                    r.done = true;
                    return Some((Err(FetchError::TimedOut), r));
                }
            };
            let data = match frame {
                None => return None,
                Some(Err(e)) => {
                    r.done = true;
                    return Some((Err(FetchError::Body(e.to_string())), r));
                }
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) if !d.is_empty() => d,
                    _ => continue,
                },
            };
            r.read += data.len() as u64;
            if r.read > max {
                r.done = true;
                return Some((Err(FetchError::TooLarge { max }), r));
            }
            return Some((Ok(data), r));
        }
    })
    .boxed()
}

/// The file name of a `Content-Disposition` value: `filename*` (RFC 5987, UTF-8 or
/// ISO-8859-1) first, else `filename`; only its last path component.
fn disposition_filename(value: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for param in split_params(value).into_iter().skip(1) {
        let Some((key, val)) = param.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => extended = extended_value(val.trim()),
            "filename" => plain = Some(unquote(val.trim())),
            _ => {}
        }
    }
    extended.or(plain).and_then(|n| clean_name(&n))
}

/// `value` split at the `;` outside quoted strings.
fn split_params(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

fn unquote(v: &str) -> String {
    let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
        return v.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// An RFC 5987 `charset'language'percent-encoded` value.
fn extended_value(v: &str) -> Option<String> {
    let mut parts = v.splitn(3, '\'');
    let charset = parts.next()?.to_ascii_lowercase();
    let _language = parts.next()?;
    let bytes = percent_decode(parts.next()?);
    match charset.as_str() {
        "utf-8" => String::from_utf8(bytes).ok(),
        "iso-8859-1" => Some(bytes.into_iter().map(char::from).collect()),
        _ => None,
    }
}

/// The last segment of a URL path, percent-decoded.
fn path_filename(path: &str) -> Option<String> {
    let last = path.rsplit('/').next()?;
    clean_name(&String::from_utf8_lossy(&percent_decode(last)))
}

/// Only the last path component of `name`, without control characters; none if empty or a
/// dot name.
fn clean_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next()?;
    let name: String = last.chars().filter(|c| !c.is_control()).collect();
    let name = name.trim();
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::TryStreamExt;
    use http_body_util::{Full, StreamBody, combinators::BoxBody};
    use hyper::body::Frame;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::*;

    type TestBody = BoxBody<Bytes, Infallible>;

    fn reply(
        status: u16,
        headers: &[(&'static str, String)],
        body: TestBody,
    ) -> Response<TestBody> {
        let mut resp = Response::new(body);
        *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        for (k, v) in headers {
            if let Ok(v) = HeaderValue::from_str(v) {
                resp.headers_mut().insert(*k, v);
            }
        }
        resp
    }

    fn full(b: &'static [u8]) -> TestBody {
        Full::new(Bytes::from_static(b)).boxed()
    }

    async fn route(req: Request<Incoming>, port: u16) -> Result<Response<TestBody>, Infallible> {
        let ok = |h: &[(&'static str, String)], b| reply(200, h, full(b));
        Ok(match req.uri().path() {
            "/docs/report%20final.txt" | "/doc.txt" => {
                ok(&[("content-type", "text/plain".into())], b"hello world")
            }
            "/named" => ok(
                &[(
                    "content-disposition",
                    r#"attachment; filename="a;b/report.pdf""#.into(),
                )],
                b"%PDF",
            ),
            "/named-ext" => ok(
                &[(
                    "content-disposition",
                    "attachment; filename=\"fallback.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
                        .into(),
                )],
                b"%PDF",
            ),
            "/to-localhost" => reply(
                302,
                &[("location", format!("http://localhost:{port}/doc.txt"))],
                full(b""),
            ),
            "/relative" => reply(301, &[("location", "docs/../doc.txt".into())], full(b"")),
            "/loop" => reply(307, &[("location", "/loop".into())], full(b"")),
            "/big" => ok(&[], &[b'x'; 64]),
            "/big-stream" => {
                let chunks = (0..8).map(|_| Ok(Frame::data(Bytes::from_static(&[b'y'; 16]))));
                reply(
                    200,
                    &[],
                    BodyExt::boxed(StreamBody::new(futures_util::stream::iter(chunks))),
                )
            }
            _ => reply(404, &[], full(b"not found")),
        })
    }

    /// A loopback HTTP server answering [`route`]; its port.
    async fn server() -> u16 {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0").await else {
            return 0;
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = service_fn(move |req| route(req, port));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        port
    }

    fn fetcher(allowed: &[&str], max_bytes: u64, timeout: Duration) -> UrlFetcher {
        let policy = FetchPolicy {
            allowed_hosts: allowed.iter().map(|s| s.to_string()).collect(),
            max_bytes,
            timeout,
            max_redirects: DEFAULT_MAX_REDIRECTS,
        };
        match UrlFetcher::new(policy) {
            Ok(f) => f,
            Err(e) => unreachable!("{e}"),
        }
    }

    fn loopback() -> UrlFetcher {
        fetcher(&["127.0.0.1"], 1 << 20, Duration::from_secs(10))
    }

    async fn body(f: Fetched) -> Result<Vec<u8>, FetchError> {
        f.body
            .try_fold(Vec::new(), |mut v, b| async move {
                v.extend_from_slice(&b);
                Ok(v)
            })
            .await
    }

    fn refused(r: Result<Fetched, FetchError>) -> String {
        match r {
            Err(FetchError::Refused(m)) => m,
            other => format!("not refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allow_listed() {
        let port = server().await;
        let open = fetcher(&[], 1 << 20, Duration::from_secs(10));
        let url = format!("http://127.0.0.1:{port}/doc.txt");
        let m = refused(open.get(&url).await);
        assert!(
            m.contains("'127.0.0.1'") && m.contains("rag_settings.allowed_url_hosts"),
            "{m}"
        );
        for url in [
            format!("http://localhost:{port}/doc.txt"),
            format!("http://LOCALHOST.:{port}/doc.txt"),
            format!("http://api.localhost:{port}/doc.txt"),
            format!("http://2130706433:{port}/doc.txt"),
            format!("http://0x7f.1:{port}/doc.txt"),
            format!("http://[::1]:{port}/doc.txt"),
            format!("http://[::ffff:127.0.0.1]:{port}/doc.txt"),
            "http://169.254.169.254/latest/meta-data".to_string(),
            "http://metadata.google.internal/".to_string(),
            "http://10.0.0.1/".to_string(),
        ] {
            let m = refused(open.get(&url).await);
            assert!(m.contains("rag_settings.allowed_url_hosts"), "{url}: {m}");
        }

        let f = match loopback().get(&url).await {
            Ok(f) => f,
            Err(e) => unreachable!("{e}"),
        };
        assert_eq!(f.url, url);
        assert_eq!(f.content_type.as_deref(), Some("text/plain"));
        assert_eq!(f.content_length, Some(11));
        assert_eq!(f.filename.as_deref(), Some("doc.txt"));
        assert_eq!(body(f).await.ok().as_deref(), Some(&b"hello world"[..]));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_local_addresses() {
        let list = AllowList::parse(&[]).unwrap_or_default();
        for name in ["2130706433", "0x7f.1", "localhost"] {
            let m = match resolve_checked(&list, name).await {
                Err(FetchError::Refused(m)) => m,
                other => format!("not refused: {other:?}"),
            };
            assert!(m.contains("rag_settings.allowed_url_hosts"), "{name}: {m}");
        }
        let m = match resolve_checked(&list, "2130706433").await {
            Err(FetchError::Refused(m)) => m,
            other => format!("{other:?}"),
        };
        assert!(m.contains("resolves to 127.0.0.1"), "{m}");

        let list = AllowList::parse(&["LocalHost".to_string()]).unwrap_or_default();
        let addrs = resolve_checked(&list, "localhost").await;
        assert!(addrs.is_ok_and(|mut a| a.any(|a| a.ip().is_loopback())));
    }

    /// The connector itself refuses (no URL check before it): the refusal holds at connect
    /// time, and numeric host forms go through the same resolver.
    #[tokio::test]
    async fn the_connector_refuses_local_names_itself() {
        let port = server().await;
        let f = fetcher(&[], 1 << 20, Duration::from_secs(10));
        for (host, says) in [
            ("localhost", "'localhost'"),
            ("2130706433", "resolves to 127.0.0.1"),
            ("0x7f.1", "resolves to 127.0.0.1"),
        ] {
            let mut req = Request::new(Empty::new());
            *req.uri_mut() = match format!("http://{host}:{port}/doc.txt").parse() {
                Ok(u) => u,
                Err(e) => unreachable!("{e}"),
            };
            let m = match f.client.request(req).await {
                Err(e) => match connect_error(&e) {
                    FetchError::Refused(m) => m,
                    other => format!("not refused: {other:?}"),
                },
                Ok(r) => format!("fetched: {}", r.status()),
            };
            assert!(m.contains(says), "{host}: {m}");
        }
    }

    #[tokio::test]
    async fn an_allow_listed_name_is_fetched_through_the_resolver() {
        let port = server().await;
        let f = fetcher(&["localhost"], 1 << 20, Duration::from_secs(10));
        let r = f.get(&format!("http://localhost:{port}/doc.txt")).await;
        assert!(r.is_ok(), "{r:?}");
    }

    #[tokio::test]
    async fn redirects_are_checked_again_and_bounded() {
        let port = server().await;
        let f = loopback();
        let m = refused(
            f.get(&format!("http://127.0.0.1:{port}/to-localhost"))
                .await,
        );
        assert!(m.contains("'localhost'"), "{m}");

        let r = f.get(&format!("http://127.0.0.1:{port}/loop")).await;
        assert!(matches!(r, Err(FetchError::TooManyRedirects)), "{r:?}");

        let r = f.get(&format!("http://127.0.0.1:{port}/relative")).await;
        assert_eq!(
            r.map(|f| f.url).ok(),
            Some(format!("http://127.0.0.1:{port}/doc.txt"))
        );

        let r = f.get(&format!("http://127.0.0.1:{port}/missing")).await;
        assert!(matches!(r, Err(FetchError::Status(404))), "{r:?}");
    }

    #[tokio::test]
    async fn bodies_past_max_bytes_are_too_large() {
        let port = server().await;
        let f = fetcher(&["127.0.0.1"], 32, Duration::from_secs(10));
        // Content-Length says 64: refused before the body is read.
        let r = f.get(&format!("http://127.0.0.1:{port}/big")).await;
        assert!(matches!(r, Err(FetchError::TooLarge { max: 32 })), "{r:?}");
        // No length (chunked, 8 x 16 bytes): the stream stops past 32.
        let r = f.get(&format!("http://127.0.0.1:{port}/big-stream")).await;
        let got = match r {
            Ok(f) => {
                assert_eq!(f.content_length, None);
                body(f).await
            }
            Err(e) => Err(e),
        };
        assert!(
            matches!(got, Err(FetchError::TooLarge { max: 32 })),
            "{got:?}"
        );
        assert_eq!(
            FetchError::TooLarge { max: 32 }.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0").await else {
            return;
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let f = fetcher(&["127.0.0.1"], 1 << 20, Duration::from_millis(200));
        let r = f.get(&format!("http://127.0.0.1:{port}/slow")).await;
        assert!(matches!(r, Err(FetchError::TimedOut)), "{r:?}");
        assert_eq!(FetchError::TimedOut.status(), StatusCode::GATEWAY_TIMEOUT);
    }

    #[tokio::test]
    async fn filenames_come_from_content_disposition_then_the_path() {
        let port = server().await;
        let f = loopback();
        let name = |path: &'static str| {
            let f = f.clone();
            async move {
                f.get(&format!("http://127.0.0.1:{port}{path}"))
                    .await
                    .ok()
                    .and_then(|r| r.filename)
            }
        };
        assert_eq!(name("/named").await.as_deref(), Some("report.pdf"));
        assert_eq!(name("/named-ext").await.as_deref(), Some("résumé.pdf"));
        assert_eq!(
            name("/docs/report%20final.txt").await.as_deref(),
            Some("report final.txt")
        );
    }

    #[test]
    fn content_disposition_values() {
        assert_eq!(
            disposition_filename("inline; filename=plain.txt").as_deref(),
            Some("plain.txt")
        );
        assert_eq!(
            disposition_filename(r#"attachment; filename="q\"uote.txt""#).as_deref(),
            Some("q\"uote.txt")
        );
        assert_eq!(
            disposition_filename("attachment; filename*=iso-8859-1'en'%E9t%E9.txt").as_deref(),
            Some("été.txt")
        );
        assert_eq!(disposition_filename("attachment").as_deref(), None);
        assert_eq!(disposition_filename(r#"attachment; filename="..""#), None);
        assert_eq!(path_filename("/"), None);
        assert_eq!(path_filename("/a/b.pdf").as_deref(), Some("b.pdf"));
    }

    #[test]
    fn allow_list_entries() {
        let list = AllowList::parse(&[
            "Docs.Example.COM.".to_string(),
            "10.0.0.5".to_string(),
            "::1".to_string(),
            "[fd00::2]".to_string(),
        ]);
        let Ok(list) = list else {
            unreachable!("{list:?}")
        };
        assert!(list.allows_name("docs.example.com"));
        assert!(list.allows_name("DOCS.example.com."));
        assert!(list.allows(&Host::Ipv4([10, 0, 0, 5].into())));
        assert!(list.allows(&Host::Ipv6(std::net::Ipv6Addr::LOCALHOST)));
        assert!(list.allows_name("[fd00::2]"));
        assert!(!list.allows_name("example.com"));
        for bad in [
            "example.com:8080",
            "http://example.com",
            "a/b",
            "",
            "[::1]:80",
        ] {
            let r = AllowList::parse(&[bad.to_string()]);
            assert!(matches!(r, Err(FetchError::BadUrl(_))), "{bad}: {r:?}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(
            FetchError::Refused(String::new()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            FetchError::TooManyRedirects.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(FetchError::Status(404).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            FetchError::Connect(String::new()).status(),
            StatusCode::BAD_GATEWAY
        );
    }
}
