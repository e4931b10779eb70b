//! The one body type the gateway sends, to clients and to upstreams.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

pub use crate::util::BoxError;

/// A body of some other module (a relayed stream, a tapped answer), called through its
/// `http_body::Body` impl: one virtual call per frame.
pub type DynBody = Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + Unpin>;

/// A response or upstream request body.
pub enum Body {
    /// A whole body at once (or none).
    Full(Option<Bytes>),
    /// Known pieces sent in order: spliced request bodies, mock streams. Zero-copy.
    Chunks { parts: VecDeque<Bytes>, len: u64 },
    /// An upstream stream relayed chunk by chunk (`upstream::relay::RelayBody`; an A2A agent's
    /// events: `admin::agent_remote::EventRelay`).
    Relay(DynBody),
    /// A pass-through answer passed on as it comes, read for usage on the side
    /// (`passthrough::usage::Tap`; message batch results: `managed::batch_results::ResultsTap`).
    Tap(DynBody),
    /// Upstream bytes passed on as they come, unread (audio, file contents).
    Stream(hyper::body::Incoming),
    /// Bytes already read, then the rest of a client's upload as it comes (multipart forms
    /// whose `model` field was swapped).
    /// (Boxed: a rare variant that would make every body, and every response moved through
    /// the pipeline, three times larger.)
    Chain {
        head: Option<Bytes>,
        rest: Option<Box<crate::request_body::RequestBody>>,
    },
}

impl Body {
    pub fn full(b: impl Into<Bytes>) -> Self {
        Body::Full(Some(b.into()))
    }
    pub fn empty() -> Self {
        Body::Full(None)
    }
    /// `head`, then the rest of an upload as it comes.
    pub fn chain(head: Option<Bytes>, rest: Option<crate::request_body::RequestBody>) -> Self {
        Body::Chain {
            head,
            rest: rest.map(Box::new),
        }
    }
    pub fn chunks(parts: impl IntoIterator<Item = Bytes>) -> Self {
        let parts: VecDeque<Bytes> = parts.into_iter().filter(|b| !b.is_empty()).collect();
        let len = parts.iter().map(|b| b.len() as u64).sum();
        Body::Chunks { parts, len }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Chunks { parts, len } => Poll::Ready(parts.pop_front().map(|b| {
                *len -= b.len() as u64;
                Ok(Frame::data(b))
            })),
            Body::Relay(b) | Body::Tap(b) => Pin::new(b.as_mut()).poll_frame(cx),
            Body::Stream(b) => Pin::new(b)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as BoxError),
            Body::Chain { head, rest } => {
                if let Some(h) = head.take() {
                    return Poll::Ready(Some(Ok(Frame::data(h))));
                }
                match rest {
                    Some(r) => Pin::new(r.as_mut())
                        .poll_frame(cx)
                        .map_err(|e| Box::new(e) as BoxError),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Full(b) => b.is_none(),
            Body::Chunks { parts, .. } => parts.is_empty(),
            Body::Relay(b) | Body::Tap(b) => b.is_end_stream(),
            Body::Stream(b) => http_body::Body::is_end_stream(b),
            Body::Chain { head, rest } => {
                head.is_none() && rest.as_deref().is_none_or(http_body::Body::is_end_stream)
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Chunks { len, .. } => SizeHint::with_exact(*len),
            Body::Relay(b) | Body::Tap(b) => b.size_hint(),
            Body::Stream(b) => http_body::Body::size_hint(b),
            Body::Chain { .. } => SizeHint::default(),
        }
    }
}
