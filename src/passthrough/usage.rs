//! Spend of pass-through calls: the provider's answer streams to the client untouched while
//! a tap reads its token usage (a JSON body of any provider's shape, an SSE or Bedrock event
//! stream) and the model it names, so the call's SpendLogs row gets tokens and a cost.

use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use serde_json::Value;

use crate::body::BoxError;
use crate::pipeline::post::Completion;
use crate::prices::Price;
use crate::providers::{StreamTranslate, anthropic, bedrock, cohere, gemini};
use crate::upstream::relay::{CUT_AT_SHUTDOWN, CutSignal, ErrorShape, dropped_because, estimate};
use crate::upstream::sse::{SseScanner, Usage};

/// The price of a call whose model has none.
static UNPRICED: LazyLock<Arc<Price>> = LazyLock::new(Default::default);

/// JSON answers longer than this are passed on without being read for usage.
const MAX_JSON: usize = 8 << 20;

/// How the answer is read.
enum Reader {
    /// A whole JSON body, copied up to [`MAX_JSON`] (then given up).
    Json(Option<Vec<u8>>),
    /// An event stream, translated to chat chunks (or read as they are) for the scanner.
    Events(Option<Box<dyn StreamTranslate>>, SseScanner),
}

/// Reads a provider's answer, in pieces as they come, for its token usage and model.
pub struct AnswerReader {
    reader: Reader,
    /// The model, from the path or the answer.
    model: Option<String>,
}

impl AnswerReader {
    /// For an answer of `content_type` from `provider` (a price map provider name, `""` when
    /// unknown) to a request whose path named `path_model`.
    pub fn new(content_type: &str, provider: &str, path_model: Option<String>) -> Self {
        let ct = content_type.to_ascii_lowercase();
        let model = path_model.clone().unwrap_or_default();
        let reader = if ct.starts_with("text/event-stream") {
            let t: Option<Box<dyn StreamTranslate>> = match provider {
                "anthropic" => Some(Box::new(anthropic::stream::StreamTranslator::new(0, true))),
                "gemini" | "vertex_ai" => Some(Box::new(gemini::stream::StreamTranslator::new(
                    &model, "", 0, true,
                ))),
                "cohere" => Some(Box::new(cohere::stream::StreamTranslator::new(
                    &model, 0, true,
                ))),
                _ => None,
            };
            Reader::Events(t, SseScanner::new(false))
        } else if ct.starts_with("application/vnd.amazon.eventstream") {
            let t = bedrock::stream::StreamTranslator::new(&model, "", 0, true);
            Reader::Events(Some(Box::new(t)), SseScanner::new(false))
        } else if ct.contains("json") {
            Reader::Json(Some(Vec::new()))
        } else {
            Reader::Json(None)
        };
        Self {
            reader,
            model: path_model,
        }
    }

    /// The next bytes of the answer.
    pub fn feed(&mut self, data: &[u8]) {
        match &mut self.reader {
            Reader::Json(Some(buf)) if buf.len() + data.len() <= MAX_JSON => {
                buf.extend_from_slice(data)
            }
            Reader::Json(buf) => *buf = None,
            Reader::Events(t, scanner) => {
                if self.model.is_none() {
                    self.model = sniff_model(data);
                }
                let chunk = match t {
                    Some(t) => Bytes::from(t.feed(data)),
                    None => Bytes::copy_from_slice(data),
                };
                scanner.feed(chunk);
            }
        }
    }

    /// Events read so far (0 for a JSON answer).
    pub fn events(&self) -> u32 {
        match &self.reader {
            Reader::Events(_, scanner) => scanner.events,
            Reader::Json(_) => 0,
        }
    }

    /// The answer ended: its usage (if it told) and the model it named.
    pub fn finish(mut self) -> (Option<Usage>, Option<String>) {
        let usage = match &mut self.reader {
            Reader::Json(Some(buf)) => serde_json::from_slice::<Value>(buf).ok().and_then(|v| {
                if self.model.is_none() {
                    self.model = answer_model(&v);
                }
                json_usage(&v)
            }),
            Reader::Json(None) => None,
            Reader::Events(t, scanner) => {
                if let Some(t) = t {
                    scanner.feed(Bytes::from(t.finish()));
                }
                scanner.finish();
                scanner.usage
            }
        };
        (usage, self.model)
    }
}

/// The provider's answer on its way to the client, read for usage on the side. At the
/// graceful-shutdown deadline an event stream ends with an error event in the provider's own
/// shape (any other answer is cut short); either way the call's row is queued then.
pub struct Tap {
    inner: Incoming,
    reader: Option<AnswerReader>,
    /// Provider name for the price map (`""` for a configured endpoint).
    provider: &'static str,
    completion: Completion,
    /// The graceful-shutdown cut, until the record is finished.
    cut: Option<CutSignal>,
    /// How an SSE answer says an error; `None` for answers that are not SSE.
    errors: Option<ErrorShape>,
}

impl Tap {
    /// Read `inner` (an answer of `content_type`) from the provider `provider` (a price map
    /// provider name; `""` when unknown), for the call recorded by `completion`.
    pub fn new(
        inner: Incoming,
        content_type: &str,
        provider: &'static str,
        path_model: Option<String>,
        completion: Completion,
        cut: CutSignal,
    ) -> Self {
        let sse = content_type
            .get(..17)
            .is_some_and(|ct| ct.eq_ignore_ascii_case("text/event-stream"));
        let errors = sse.then_some(match provider {
            "anthropic" => ErrorShape::Anthropic,
            "gemini" | "vertex_ai" => ErrorShape::Gemini,
            _ => ErrorShape::OpenAi,
        });
        Self {
            inner,
            reader: Some(AnswerReader::new(content_type, provider, path_model)),
            provider,
            completion,
            cut: Some(cut),
            errors,
        }
    }

    /// The gateway cuts the answer at its shutdown deadline: an SSE error event, else an error
    /// that closes the connection.
    fn cut_now(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.end(Some(CUT_AT_SHUTDOWN.to_string()));
        Poll::Ready(Some(match self.errors {
            Some(shape) => Ok(Frame::data(Bytes::from(shape.event(CUT_AT_SHUTDOWN)))),
            None => Err(CUT_AT_SHUTDOWN.into()),
        }))
    }

    fn end(&mut self, error: Option<String>) {
        self.cut = None;
        let Some(reader) = self.reader.take() else {
            return;
        };
        let events = reader.events();
        let (usage, model) = reader.finish();
        // a cut answer: what the provider reported, the rest estimated as on LLM routes
        self.completion.usage = match &error {
            Some(_) => Some(estimate(usage, self.completion.prompt_estimate, events)),
            None => usage,
        };
        self.completion.stream_error = error;
        // a call whose request named no priced model: the price of the model the answer
        // names, else none (never the price of the deployment lending its credential)
        if self.completion.price.is_none() {
            let p = model
                .as_deref()
                .and_then(|m| Price::lookup(self.provider, m));
            self.completion.price = Some(p.unwrap_or_else(|| UNPRICED.clone()));
        }
        if let Some(m) = model
            && let Some((_, Some(row))) = self.completion.spend.as_mut()
            && row.provider_model.as_deref() == Some("")
        {
            row.provider_model = Some(m);
        }
    }
}

impl Drop for Tap {
    /// The client went away before the end of the answer (or stopped reading it and its
    /// connection was closed at the shutdown deadline): the usage read so far is booked.
    fn drop(&mut self) {
        if self.reader.is_some() {
            let why = dropped_because(self.cut.as_ref());
            self.end(Some(why.to_string()));
        }
    }
}

/// Usage from a whole answer, whatever provider's shape it has: Gemini `usageMetadata` (also
/// the last element of a streamed array), Bedrock Converse (`inputTokens`), Anthropic
/// (`input_tokens` without a total), Cohere (`tokens`/`billed_units`, v1 in `meta`), else
/// OpenAI's chat, embeddings and Responses shapes.
pub fn json_usage(v: &Value) -> Option<Usage> {
    if let Value::Array(items) = v {
        return items.iter().rev().find_map(json_usage);
    }
    let openai = if let Some(um) = v.get("usageMetadata") {
        gemini::response::usage(um)
    } else if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        if u.get("inputTokens").is_some() {
            bedrock::response::usage(u)
        } else if u.get("tokens").is_some() || u.get("billed_units").is_some() {
            cohere::response::usage(u)
        } else if u.get("input_tokens").is_some() && u.get("total_tokens").is_none() {
            anthropic::response::usage(u)
        } else {
            u.clone()
        }
    } else if let Some(meta) = v.get("meta").filter(|m| m.get("billed_units").is_some()) {
        cohere::response::usage(meta)
    } else {
        // a Responses API event or object wrapping the response
        return v.get("response").and_then(json_usage);
    };
    serde_json::from_value::<Usage>(openai)
        .ok()
        .filter(|u| u.total_tokens > 0)
}

/// The model an answer names (`model`, Gemini's `modelVersion`, Anthropic's `message.model`).
fn answer_model(v: &Value) -> Option<String> {
    let v = match v {
        Value::Array(items) => items.first()?,
        v => v,
    };
    ["model", "modelVersion"]
        .iter()
        .find_map(|k| v.get(k).and_then(Value::as_str))
        .or_else(|| {
            v.get("message")
                .or(v.get("response"))
                .and_then(|m| m.get("model"))
                .and_then(Value::as_str)
        })
        .filter(|m| !m.is_empty())
        .map(str::to_string)
}

/// The first `"model":"..."` in a stream's bytes.
fn sniff_model(data: &[u8]) -> Option<String> {
    let at = crate::literal!(b"\"model\"").find(data)?;
    let rest = data[at + 7..].trim_ascii_start();
    let rest = rest.strip_prefix(b":")?.trim_ascii_start();
    let rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', rest)?;
    let m = std::str::from_utf8(&rest[..end]).ok()?;
    (!m.is_empty()).then(|| m.to_string())
}

/// The model named in a provider path: Gemini and Vertex `models/{m}:method`, Bedrock
/// `model/{m}/converse`, Azure `deployments/{m}/...`.
pub fn path_model(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split('/').collect();
    segs.windows(2).find_map(|w| match w[0] {
        "models" => w[1].split(':').next().map(str::to_string),
        "model" | "deployments" => Some(percent_decode(w[1])),
        _ => None,
    })
}

/// `%3A` and friends in a Bedrock model id.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl http_body::Body for Tap {
    type Data = Bytes;
    type Error = BoxError;

    fn is_end_stream(&self) -> bool {
        self.reader.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.reader.is_none() {
            return Poll::Ready(None);
        }
        if this.cut.as_ref().is_some_and(CutSignal::is_cut) {
            return this.cut_now();
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.completion.chunks == 0 {
                        this.completion.first_chunk = Some(std::time::SystemTime::now());
                    }
                    this.completion.chunks += 1;
                    if let Some(r) = this.reader.as_mut() {
                        r.feed(data);
                    }
                }
                // with a known length, the server may not ask again after the last byte
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
            Poll::Pending => {
                if this.cut.as_mut().is_some_and(|c| c.poll_cut(cx)) {
                    return this.cut_now();
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_of_every_shape() {
        let anthropic = json!({"model": "claude-3-5-sonnet-20240620", "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2}});
        let u = json_usage(&anthropic).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cache_read_tokens),
            (12, 5, 2)
        );
        let openai =
            json!({"usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}});
        assert_eq!(json_usage(&openai).unwrap().total_tokens, 10);
        let responses =
            json!({"usage": {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}});
        assert_eq!(json_usage(&responses).unwrap().prompt_tokens, 7);
        let gemini = json!([{"candidates": []}, {"usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 6, "totalTokenCount": 10}}]);
        assert_eq!(json_usage(&gemini).unwrap().completion_tokens, 6);
        let bedrock = json!({"usage": {"inputTokens": 8, "outputTokens": 2}});
        assert_eq!(json_usage(&bedrock).unwrap().total_tokens, 10);
        let cohere = json!({"usage": {"billed_units": {"input_tokens": 3, "output_tokens": 4}}});
        assert_eq!(json_usage(&cohere).unwrap().total_tokens, 7);
        let cohere_v1 = json!({"meta": {"billed_units": {"input_tokens": 3, "output_tokens": 1}}});
        assert_eq!(json_usage(&cohere_v1).unwrap().total_tokens, 4);
        assert!(json_usage(&json!({"data": []})).is_none());
        assert!(json_usage(&json!({"usage": {}})).is_none());
        assert_eq!(
            answer_model(&anthropic).as_deref(),
            Some("claude-3-5-sonnet-20240620")
        );
    }

    #[test]
    fn models_from_paths_and_streams() {
        assert_eq!(
            path_model("v1beta/models/gemini-1.5-pro:generateContent").as_deref(),
            Some("gemini-1.5-pro")
        );
        assert_eq!(
            path_model("model/anthropic.claude-3-haiku-20240307-v1%3A0/converse").as_deref(),
            Some("anthropic.claude-3-haiku-20240307-v1:0")
        );
        assert_eq!(path_model("v1/messages"), None);
        let ev = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\": \"claude-x\"}}\n\n";
        assert_eq!(sniff_model(ev).as_deref(), Some("claude-x"));
        assert_eq!(sniff_model(b"data: {\"model\":\"\"}"), None);
    }
}
