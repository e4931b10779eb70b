//! What one call sends upstream, built before it is sent: the pipeline builds it once per
//! attempt (one function per wire), then sends it ([`super::call_whole`], [`super::call_head`])
//! or shows it (`/utils/transform_request`) through the same [`super::request`].

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};

use crate::body::Body;
use crate::router::Deployment;

/// A POST to a deployment: its URL, its JSON body (as parts: a body forwarded as received is
/// slices of the client's bytes, never copied), the headers of this call on top of the
/// deployment's own (client headers passed through, tokens, signatures), and whether the
/// answer is a stream.
#[derive(Debug, Clone)]
pub struct Outbound<'a> {
    pub uri: Cow<'a, Uri>,
    pub body: Vec<Bytes>,
    pub extra: Vec<(HeaderName, HeaderValue)>,
    pub stream: bool,
}

impl Outbound<'_> {
    /// The request as it is sent to `dep` (what [`super::send_with`] builds for it).
    pub fn request(&self, dep: &Deployment) -> Request<Body> {
        super::request(
            dep,
            Method::POST,
            &self.uri,
            &self.body,
            self.stream,
            &self.extra,
        )
    }

    /// The body's bytes in one piece.
    pub fn body_bytes(&self) -> Bytes {
        match self.body.as_slice() {
            [one] => one.clone(),
            parts => Bytes::from(parts.concat()),
        }
    }
}
