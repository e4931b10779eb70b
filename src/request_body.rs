//! A client's request body with a deadline: every route reads the body through this type, so a
//! client that sends its body too slowly (a slow-body attack) is cut wherever the body is read,
//! collected or streamed on to an upstream.
//!
//! The body must have arrived `timeout` after the request head, extended by one second for
//! every `min_rate` bytes received (a large upload that keeps a decent pace is never cut). The
//! clock only matters while the gateway waits for the client: the deadline is checked when the
//! client has no data ready, so a slow upstream reading a forwarded upload is never blamed on
//! the client. A body already complete with its head (the usual small JSON request) never arms
//! a timer.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use http::StatusCode;

use crate::util::BoxError;

/// How long a client may take to send a request body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyDeadline {
    /// Time allowed for the whole body (`general_settings.request_body_timeout`); zero: none.
    pub timeout: Duration,
    /// Bytes per second that each earn one more second
    /// (`general_settings.request_body_min_bytes_per_second`); zero: no extension.
    pub min_rate: u64,
}

/// Default `general_settings.request_body_timeout` (seconds).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default `general_settings.request_body_min_bytes_per_second`.
pub const DEFAULT_MIN_RATE: u64 = 16 * 1024;

impl Default for BodyDeadline {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            min_rate: DEFAULT_MIN_RATE,
        }
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The client did not send its body within this `request_body_timeout`.
    #[error("the request body did not arrive within {0:?} (general_settings.request_body_timeout)")]
    TimedOut(Duration),
    #[error("{0}")]
    Read(BoxError),
}

/// Set when a request's body was cut for slowness; the server then answers 408 and closes
/// the connection, whatever the route made of the failed read.
#[derive(Debug, Default)]
pub struct Cut(AtomicBool);

impl Cut {
    pub fn happened(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

struct Clock {
    start: Instant,
    limits: BodyDeadline,
    received: u64,
    /// Armed the first time the client keeps the gateway waiting.
    sleep: Option<Pin<Box<Sleep>>>,
    cut: Arc<Cut>,
}

impl Clock {
    fn deadline(&self) -> Instant {
        let earned = match self.limits.min_rate {
            0 => Duration::ZERO,
            rate => Duration::from_secs_f64(self.received as f64 / rate as f64),
        };
        self.start + self.limits.timeout + earned
    }

    /// `Ready` once the deadline has passed (the body is then cut).
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                self.cut.0.store(true, Ordering::Relaxed);
                return Poll::Ready(());
            }
            let sleep = match &mut self.sleep {
                Some(s) => {
                    if s.deadline() != deadline {
                        s.as_mut().reset(deadline);
                    }
                    s
                }
                None => self
                    .sleep
                    .insert(Box::pin(tokio::time::sleep_until(deadline))),
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

/// A request body that fails with [`BodyError::TimedOut`] when the client is too slow.
pub struct RequestBody<B = Incoming> {
    inner: B,
    clock: Option<Clock>,
    /// Set once cut: the `request_body_timeout` that was exceeded.
    timed_out: Option<Duration>,
}

impl<B: http_body::Body> RequestBody<B> {
    /// Wrap `inner`, whose head arrived now; the returned [`Cut`] tells whether it was cut
    /// (`None` when there is nothing to bound: no body, or no timeout).
    pub fn new(inner: B, limits: BodyDeadline) -> (Self, Option<Arc<Cut>>) {
        if limits.timeout.is_zero() || inner.is_end_stream() {
            let body = Self {
                inner,
                clock: None,
                timed_out: None,
            };
            return (body, None);
        }
        let cut = Arc::new(Cut::default());
        let clock = Clock {
            start: Instant::now(),
            limits,
            received: 0,
            sleep: None,
            cut: cut.clone(),
        };
        let body = Self {
            inner,
            clock: Some(clock),
            timed_out: None,
        };
        (body, Some(cut))
    }
}

impl<B> http_body::Body for RequestBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Some(t) = this.timed_out {
            return Poll::Ready(Some(Err(BodyError::TimedOut(t))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(clock), Some(data)) = (this.clock.as_mut(), frame.data_ref()) {
                    clock.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Read(e.into())))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let Some(clock) = this.clock.as_mut() else {
                    return Poll::Pending;
                };
                if clock.poll_expired(cx).is_pending() {
                    return Poll::Pending;
                }
                let t = clock.limits.timeout;
                this.timed_out = Some(t);
                this.clock = None;
                Poll::Ready(Some(Err(BodyError::TimedOut(t))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    /// A body fed by the test, chunk by chunk.
    struct Fed(mpsc::Receiver<Bytes>);

    impl http_body::Body for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }

    fn limits(timeout_ms: u64, min_rate: u64) -> BodyDeadline {
        BodyDeadline {
            timeout: Duration::from_millis(timeout_ms),
            min_rate,
        }
    }

    #[tokio::test]
    async fn a_trickled_body_is_cut_at_the_deadline() {
        let (tx, rx) = mpsc::channel(8);
        let (body, cut) = RequestBody::new(Fed(rx), limits(200, 0));
        let cut = cut.unwrap();
        let feeder = tokio::spawn(async move {
            for _ in 0..100 {
                if tx.send(Bytes::from_static(b"x")).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
        let t0 = std::time::Instant::now();
        let err = body.collect().await.err().unwrap();
        assert!(matches!(err, BodyError::TimedOut(_)), "{err}");
        assert!(cut.happened());
        assert!(t0.elapsed() < Duration::from_secs(2));
        feeder.abort();
    }

    #[tokio::test]
    async fn a_body_keeping_the_minimum_rate_is_not_cut() {
        let (tx, rx) = mpsc::channel(8);
        // 100 ms, extended by 1 s per 1000 bytes: 100 bytes every 20 ms (5000 B/s) keeps ahead
        let (body, cut) = RequestBody::new(Fed(rx), limits(100, 1000));
        tokio::spawn(async move {
            for _ in 0..20 {
                let _ = tx.send(Bytes::from(vec![b'x'; 100])).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let got = body.collect().await.unwrap().to_bytes();
        assert_eq!(got.len(), 2000);
        assert!(!cut.unwrap().happened());
    }

    #[tokio::test]
    async fn no_timeout_or_no_body_arms_nothing() {
        let (_tx, rx) = mpsc::channel::<Bytes>(1);
        let (_, cut) = RequestBody::new(Fed(rx), limits(0, 0));
        assert!(cut.is_none());
        let (_, cut) = RequestBody::new(http_body_util::Empty::<Bytes>::new(), limits(100, 0));
        assert!(cut.is_none());
    }
}

/// Why a request body was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(
        "Request body too large: the limit is {limit_mb} MB (general_settings.max_request_size_mb)"
    )]
    TooLarge { limit_mb: f64 },
    #[error("Could not read request body: {0}")]
    Read(String),
    #[error(
        "Request body not received in time: the limit is {secs} s (general_settings.request_body_timeout)"
    )]
    BodyTimeout { secs: f64 },
    #[error("Invalid JSON in request body: {0}")]
    InvalidJson(String),
    #[error("Invalid request body: {0}")]
    BadValue(String),
    #[error("Request body must be a JSON object")]
    NotObject,
    #[error("Missing required parameter: {0}")]
    Missing(&'static str),
    #[error("Invalid parameter {field}: {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    /// A limit on the body as a whole (nesting, lone surrogates) broken inside a top-level member.
    #[error("{}", structure_message(field.as_deref(), message))]
    Structure {
        field: Option<String>,
        message: &'static str,
    },
}

fn structure_message(field: Option<&str>, message: &str) -> String {
    match field {
        Some(f) => format!("Invalid parameter {f}: {message}"),
        None => format!("Invalid request body: {message}"),
    }
}

impl RequestError {
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            RequestError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
    pub fn param(&self) -> Option<&str> {
        match self {
            RequestError::Missing(f) => Some(f),
            RequestError::Invalid { field, .. } => Some(field),
            RequestError::Structure { field, .. } => field.as_deref(),
            _ => None,
        }
    }
}

/// A failed body read: 408 when the client was too slow, else 400.
pub fn read_error(e: BoxError) -> RequestError {
    match e.downcast_ref::<BodyError>() {
        Some(BodyError::TimedOut(t)) => RequestError::BodyTimeout {
            secs: t.as_secs_f64(),
        },
        _ => RequestError::Read(e.to_string()),
    }
}
