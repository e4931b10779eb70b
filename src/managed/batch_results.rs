//! An Anthropic message batch's results (`/v1/messages/batches/{id}/results`, JSONL) on their
//! way to the client: passed on chunk by chunk as they come, never held whole, while
//! [`Counter`] adds up the `usage` of the succeeded results. When the results end, the batch's
//! one SpendLogs row is booked from that usage (at the batch price); with a database, only the
//! first complete read of a batch books it (`ClaimMessageBatchSpend`), later reads cost 0. A
//! read the client stops before the end books nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::Value;

use crate::body::BoxError;
use crate::pipeline::post::Completion;
use crate::spend::usage::Usage;
use crate::store::{Query, Store};

/// The longest result line read for its usage (longer ones pass on uncounted).
pub const MAX_LINE: usize = 16 << 20;

/// Adds up the usage of succeeded results in JSONL fed in any pieces.
#[derive(Debug, Default)]
pub struct Counter {
    /// The line read so far (the bytes after the last newline).
    line: Vec<u8>,
    /// The current line went past [`MAX_LINE`]: skipped to its end.
    skipping: bool,
    pub usage: Usage,
    /// Succeeded results counted.
    pub succeeded: u64,
}

#[derive(Deserialize)]
struct Line {
    result: Option<Outcome>,
}

#[derive(Deserialize)]
struct Outcome {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    usage: Option<Value>,
}

impl Counter {
    /// Read the next piece of the results.
    pub fn feed(&mut self, mut data: &[u8]) {
        while let Some(at) = memchr::memchr(b'\n', data) {
            if !self.skipping && self.line.len() + at <= MAX_LINE {
                if self.line.is_empty() {
                    self.count(&data[..at]);
                } else {
                    self.line.extend_from_slice(&data[..at]);
                    let line = std::mem::take(&mut self.line);
                    self.count(&line);
                }
            }
            self.line.clear();
            self.skipping = false;
            data = &data[at + 1..];
        }
        if self.skipping {
            return;
        }
        if self.line.len() + data.len() > MAX_LINE {
            self.line = Vec::new();
            self.skipping = true;
        } else {
            self.line.extend_from_slice(data);
        }
    }

    /// The results ended: the last line, if it had no newline.
    pub fn finish(&mut self) {
        if !self.skipping && !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.count(&line);
        }
    }

    fn count(&mut self, line: &[u8]) {
        if let Some(u) = line_usage(line) {
            self.succeeded += 1;
            let t = &mut self.usage;
            t.prompt_tokens = t.prompt_tokens.saturating_add(u.prompt_tokens);
            t.completion_tokens = t.completion_tokens.saturating_add(u.completion_tokens);
            t.total_tokens = t.total_tokens.saturating_add(u.total_tokens);
            t.cache_read_tokens = t.cache_read_tokens.saturating_add(u.cache_read_tokens);
            t.cache_creation_tokens = t
                .cache_creation_tokens
                .saturating_add(u.cache_creation_tokens);
        }
    }
}

/// The usage of one result line when it succeeded (errored, canceled and expired requests are
/// not billed).
pub fn line_usage(line: &[u8]) -> Option<Usage> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return None;
    }
    let l: Line = serde_json::from_slice(line).ok()?;
    let r = l.result?;
    if r.kind.as_deref() != Some("succeeded") {
        return None;
    }
    let u = r.message?.usage.filter(Value::is_object)?;
    serde_json::from_value(crate::providers::anthropic::response::usage(&u)).ok()
}

/// Where the first complete read of a batch's results claims its spend.
pub struct Claim {
    pub store: Arc<Store>,
    /// The deployment holding the batch.
    pub model_id: String,
    /// The provider's batch id.
    pub batch_id: String,
}

/// The results body: the provider's bytes as they come, counted on the side.
pub struct ResultsTap {
    inner: Incoming,
    counter: Counter,
    /// The call's record, until the results end (or the client goes away).
    completion: Option<Completion>,
    claim: Option<Claim>,
}

impl ResultsTap {
    pub fn new(inner: Incoming, completion: Completion, claim: Option<Claim>) -> Self {
        Self {
            inner,
            counter: Counter::default(),
            completion: Some(completion),
            claim,
        }
    }

    /// The results ended (`error`: they did not): book them.
    fn end(&mut self, error: Option<String>) {
        let Some(mut rec) = self.completion.take() else {
            return;
        };
        if let Some(e) = error {
            rec.stream_error = Some(e);
            rec.fixed_cost = Some(0.0);
            return;
        }
        self.counter.finish();
        rec.usage = Some(self.counter.usage);
        let Some(claim) = self.claim.take() else {
            return;
        };
        // booked by the first complete read only; the record is finished once that is known
        tokio::spawn(async move {
            let claimed = claim
                .store
                .query(
                    Query::ClaimMessageBatchSpend,
                    &[&claim.model_id, &claim.batch_id],
                )
                .await;
            match claimed {
                Ok(rows) if !rows.is_empty() => {}
                Ok(_) => {
                    rec.usage = None;
                    rec.fixed_cost = Some(0.0);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "message batch spend not booked: the database did not answer");
                    rec.usage = None;
                    rec.fixed_cost = Some(0.0);
                }
            }
            drop(rec);
        });
    }
}

impl Drop for ResultsTap {
    /// The client went away before the end of the results: nothing is booked.
    fn drop(&mut self) {
        self.end(Some(
            "The client stopped reading the batch results before their end".into(),
        ));
    }
}

impl http_body::Body for ResultsTap {
    type Data = Bytes;
    type Error = BoxError;

    fn is_end_stream(&self) -> bool {
        self.completion.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.completion.is_none() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.counter.feed(data);
                }
                if this.inner.is_end_stream() {
                    this.end(None);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.end(Some(format!("Provider stream failed: {e}")));
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => {
                this.end(None);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &str, input: u64, output: u64) -> String {
        format!(
            r#"{{"custom_id":"{id}","result":{{"type":"succeeded","message":{{"id":"msg_1","type":"message","role":"assistant","content":[{{"type":"text","text":"a\nb \"usage\":{{}}"}}],"usage":{{"input_tokens":{input},"output_tokens":{output}}}}}}}}}"#
        )
    }

    #[test]
    fn adds_up_succeeded_results_fed_in_any_pieces() {
        let body = format!(
            "{}\n{}\n{{\"custom_id\":\"c\",\"result\":{{\"type\":\"errored\",\"error\":{{}}}}}}\nnot json\n{}",
            ok("a", 10, 5),
            ok("b", 3, 2),
            ok("d", 1, 1)
        );
        for size in [1, 7, 64, body.len()] {
            let mut c = Counter::default();
            for piece in body.as_bytes().chunks(size) {
                c.feed(piece);
            }
            c.finish();
            assert_eq!(c.succeeded, 3, "{size}");
            assert_eq!(
                (c.usage.prompt_tokens, c.usage.completion_tokens),
                (14, 8),
                "{size}"
            );
        }
    }

    #[test]
    fn an_overlong_line_is_skipped_to_its_end() {
        let mut c = Counter::default();
        c.feed(&vec![b'x'; MAX_LINE + 1]);
        c.feed(b"tail\n");
        c.feed(ok("a", 2, 2).as_bytes());
        c.finish();
        assert_eq!((c.succeeded, c.usage.prompt_tokens), (1, 2));
        // the same whole or in pieces
        let mut long = ok("b", 1, 1).into_bytes();
        long.resize(MAX_LINE + 10, b' ');
        long.push(b'\n');
        let mut whole = Counter::default();
        whole.feed(&long);
        assert_eq!(whole.succeeded, 0);
    }
}
