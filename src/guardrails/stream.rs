//! `post_call` on a relayed stream: chunks pass as they come while their text is assembled;
//! the end of the stream (`data: [DONE]`, Anthropic's `message_stop`, Responses'
//! `response.completed`, or the upstream's end) is held until the assembled text passes the
//! guardrails. A block ends the stream with an error event instead.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::{GuardrailError, Mode, Run, Side};
use crate::body::{BoxError, DynBody};

type Check = Pin<Box<dyn Future<Output = Result<Option<Vec<String>>, GuardrailError>> + Send>>;

/// A stream whose end waits for the guardrails.
pub struct Guarded {
    inner: DynBody,
    run: Arc<Run>,
    /// Bytes of an unfinished line.
    line: Vec<u8>,
    text: String,
    /// The end-of-stream frames held back.
    held: Vec<Bytes>,
    holding: bool,
    check: Option<Check>,
    state: State,
}

#[derive(PartialEq, Eq)]
enum State {
    Streaming,
    Checking,
    Releasing,
    Done,
}

/// Whether a chunk carries a marker of a stream's last events (OpenAI's `[DONE]`, Anthropic's
/// `message_stop`, the Responses API's `response.completed`); looked for in every chunk, with
/// searchers built once.
fn ends_answer(data: &[u8]) -> bool {
    crate::holds!(data, b"[DONE]")
        || crate::holds!(data, b"message_stop")
        || crate::holds!(data, b"response.completed")
}

impl Guarded {
    pub fn new(inner: DynBody, run: Arc<Run>) -> Self {
        Self {
            inner,
            run,
            line: Vec::new(),
            text: String::new(),
            held: Vec::new(),
            holding: false,
            check: None,
            state: State::Streaming,
        }
    }

    /// Read the `data:` lines of `chunk` into the assembled text.
    fn read(&mut self, chunk: &[u8]) {
        self.line.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(n) = memchr::memchr(b'\n', &self.line[start..]) {
            let line = &self.line[start..start + n];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(data) = line.strip_prefix(b"data:") {
                let data = data.trim_ascii_start();
                if data != b"[DONE]" {
                    super::texts::stream_delta(data, &mut self.text);
                }
            }
            start += n + 1;
        }
        self.line.drain(..start);
    }

    fn start_check(&mut self) {
        let run = self.run.clone();
        let texts = vec![std::mem::take(&mut self.text)];
        self.check = Some(Box::pin(async move {
            run.apply(Mode::PostCall, Side::Response, &texts).await
        }));
        self.state = State::Checking;
    }
}

/// The SSE error event a blocked stream ends with.
fn error_event(e: &GuardrailError) -> Bytes {
    let status = e.status().as_u16();
    let param = match e {
        GuardrailError::Blocked { guardrail, .. } | GuardrailError::Failed { guardrail, .. } => {
            Some(guardrail.as_str())
        }
        _ => None,
    };
    let body = serde_json::json!({"error": {
        "message": e.to_string(),
        "type": crate::error::type_for_status(e.status()),
        "param": param,
        "code": status.to_string(),
    }});
    Bytes::from(format!("data: {body}\n\n"))
}

/// What `poll_frame` answers.
type Polled = Poll<Option<Result<Frame<Bytes>, BoxError>>>;

impl HttpBody for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Polled {
        self.get_mut().next(cx)
    }
}

impl Guarded {
    /// The next frame: passed on, held, or the held ones released after the check.
    fn next(&mut self, cx: &mut Context<'_>) -> Polled {
        let this = self;
        loop {
            match this.state {
                State::Done => return Poll::Ready(None),
                State::Releasing => {
                    if this.held.is_empty() {
                        this.state = State::Done;
                        return Poll::Ready(None);
                    }
                    let b = this.held.remove(0);
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                State::Checking => {
                    let Some(check) = this.check.as_mut() else {
                        this.state = State::Releasing;
                        continue;
                    };
                    let result = match check.as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(r) => r,
                    };
                    this.check = None;
                    match result {
                        // a rewrite of text already sent cannot be applied: it passes
                        Ok(_) => this.state = State::Releasing,
                        Err(e) => {
                            this.held = vec![error_event(&e)];
                            this.state = State::Releasing;
                        }
                    }
                }
                State::Streaming => match Pin::new(this.inner.as_mut()).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => this.start_check(),
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Some(Ok(frame))) => {
                        let Ok(data) = frame.into_data() else {
                            continue;
                        };
                        this.read(&data);
                        if !this.holding && ends_answer(&data) {
                            this.holding = true;
                        }
                        if this.holding {
                            this.held.push(data);
                            continue;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                },
            }
        }
    }
}
