//! The semantic cache: prompt text, embedding vectors and an in-process nearest-neighbour index.
//!
//! On an exact-cache miss the prompt's text ([`prompt_text`]) is embedded by an embedding model
//! ([`embedding_of`] reads its answer) and looked up in an [`Index`] of earlier prompts by cosine
//! similarity. Index entries are grouped in partitions (the model group, caller scope and the
//! other request parameters, computed by the caller) and point at the exact cache key holding
//! the stored answer. Vectors are persisted as bytes ([`encode_vector`], [`decode_vector`]).
//! Everything here is pure: no I/O, no async.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

/// The most dimensions a vector may have (read from an embedding answer or from bytes).
pub const MAX_DIMENSIONS: usize = 65_536;

/// The text a request's prompt is compared by: for a chat body (`messages`), each message's text
/// as `"{role}: {text}\n"` in order, where text is a string `content` or the `text` of
/// `{"type":"text","text":..}` parts joined by `"\n"` (other parts like images are skipped,
/// messages without any text, such as tool calls, are left out); for a completion body, `prompt`
/// (a string, or an array of strings joined by `"\n"`).
///
/// None when the body is not a JSON object or has no text at all (an empty result, a `prompt`
/// of token ids).
pub fn prompt_text(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let text = match obj.get("messages") {
        Some(Value::Array(messages)) => chat_text(messages),
        _ => completion_text(obj.get("prompt")?)?,
    };
    (!text.is_empty()).then_some(text)
}

/// Whether every message content part is text (images, audio and files cannot be compared by
/// their text, so such prompts are left out of the semantic cache).
pub fn text_only(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let Some(messages) = v.get("messages").and_then(Value::as_array) else {
        return true;
    };
    messages.iter().all(|m| match m.get("content") {
        Some(Value::Array(parts)) => parts.iter().all(|p| part_text(p).is_some()),
        _ => true,
    })
}

/// `"{role}: {text}\n"` for each message with text.
fn chat_text(messages: &[Value]) -> String {
    let mut out = String::new();
    for message in messages {
        let Some(text) = message.get("content").and_then(content_text) else {
            continue;
        };
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        out.push_str(role);
        out.push_str(": ");
        out.push_str(&text);
        out.push('\n');
    }
    out
}

/// A message's text: a string `content`, or its text parts joined by `"\n"` (None without any).
fn content_text(content: &Value) -> Option<Cow<'_, str>> {
    match content {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts.iter().filter_map(part_text).collect();
            (!texts.is_empty()).then(|| Cow::Owned(texts.join("\n")))
        }
        _ => None,
    }
}

/// The text of a `{"type":"text","text":..}` part.
fn part_text(part: &Value) -> Option<&str> {
    if part.get("type").and_then(Value::as_str) != Some("text") {
        return None;
    }
    part.get("text").and_then(Value::as_str)
}

/// A completion `prompt`: a string, or an array of strings joined by `"\n"` (None otherwise).
fn completion_text(prompt: &Value) -> Option<String> {
    match prompt {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<&str>>>()
            .map(|texts| texts.join("\n")),
        _ => None,
    }
}

/// The first vector of an OpenAI embeddings answer (`data[0].embedding`, an array of numbers).
///
/// None otherwise: not JSON, no such member, a base64 string, an empty array, more than
/// [`MAX_DIMENSIONS`] values, a value that is not a number or not finite as an `f32`.
pub fn embedding_of(body: &[u8]) -> Option<Vec<f32>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let numbers = v.get("data")?.get(0)?.get("embedding")?.as_array()?;
    if numbers.is_empty() || numbers.len() > MAX_DIMENSIONS {
        return None;
    }
    numbers.iter().map(finite_f32).collect()
}

/// A JSON number as a finite `f32`.
fn finite_f32(n: &Value) -> Option<f32> {
    #[allow(clippy::cast_possible_truncation)] // the nearest f32 is what is wanted
    let x = n.as_f64()? as f32;
    x.is_finite().then_some(x)
}

/// A vector as bytes (each value `f32` little endian), for Redis.
pub fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Bytes from [`encode_vector`] back into a vector: None unless the length is a non-zero
/// multiple of 4, at most [`MAX_DIMENSIONS`] values, all finite.
pub fn decode_vector(b: &[u8]) -> Option<Vec<f32>> {
    if b.is_empty() || !b.len().is_multiple_of(4) || b.len() / 4 > MAX_DIMENSIONS {
        return None;
    }
    b.chunks_exact(4).map(finite_le_f32).collect()
}

/// Four bytes as a finite little-endian `f32`.
fn finite_le_f32(chunk: &[u8]) -> Option<f32> {
    let x = f32::from_le_bytes(chunk.try_into().ok()?);
    x.is_finite().then_some(x)
}

/// Cosine similarity (computed in `f64`, so large values do not overflow); 0.0 when the lengths
/// differ, either vector is all zero, or a value is not finite.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (Some(na), Some(nb)) = (norm(a), norm(b)) else {
        return 0.0;
    };
    similarity(dot(a, b) / (na * nb))
}

/// The Euclidean norm in `f64`: None when it is zero or not finite (so every value is finite).
fn norm(v: &[f32]) -> Option<f64> {
    let n = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    (n.is_finite() && n > 0.0).then_some(n)
}

/// The dot product in `f64` (the vectors have the same length).
fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

/// A cosine as `f32`, clamped to [-1, 1] against rounding (0.0 if it is not finite).
#[allow(clippy::cast_possible_truncation)] // within [-1, 1]
fn similarity(c: f64) -> f32 {
    if c.is_finite() {
        c.clamp(-1.0, 1.0) as f32
    } else {
        0.0
    }
}

/// `v` scaled to unit length (None for a zero, empty or non-finite vector).
fn normalized(v: &[f32]) -> Option<Box<[f32]>> {
    let n = norm(v)?;
    #[allow(clippy::cast_possible_truncation)] // within [-1, 1]
    let unit = v.iter().map(|x| (f64::from(*x) / n) as f32).collect();
    Some(unit)
}

/// The in-process nearest-neighbour index: per partition, up to `per_partition` entries (the
/// oldest evicted first), each an exact cache key and its vector stored at unit length; at most
/// `max_partitions` partitions (beyond it the oldest-created one is dropped).
///
/// Thread safe; lookups share a read lock. A lookup is a linear scan of the partition.
pub struct Index {
    per_partition: usize,
    max_partitions: usize,
    /// Entries in all partitions together (the oldest partition's oldest go first).
    max_entries: usize,
    inner: RwLock<Inner>,
}

/// The index's state behind the lock.
#[derive(Default)]
struct Inner {
    /// Partition name -> its entries, oldest first.
    partitions: HashMap<Arc<str>, VecDeque<Entry>>,
    /// Partition names, oldest-created first (the same set as `partitions`' keys).
    created: VecDeque<Arc<str>>,
    /// Cache key -> the partitions holding an entry for it (for `remove_key`).
    owners: HashMap<Arc<str>, Vec<Arc<str>>>,
    /// Entries in all partitions.
    total: usize,
}

/// One stored prompt.
struct Entry {
    /// The exact cache key holding the answer.
    key: Arc<str>,
    /// The prompt's vector at unit length.
    unit: Box<[f32]>,
}

impl Index {
    /// An empty index keeping up to `per_partition` entries in each of up to `max_partitions`
    /// partitions (either 0: nothing is ever stored).
    pub fn new(per_partition: usize, max_partitions: usize) -> Self {
        Self {
            per_partition,
            max_partitions,
            max_entries: usize::MAX,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// At most `n` entries in all partitions together: beyond it the oldest-created
    /// partition's oldest entries go first.
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Add (or replace, when `key` is already in that partition) an entry; it becomes the
    /// partition's newest. A zero, empty or non-finite vector is not stored.
    pub fn insert(&self, partition: &str, key: &str, vector: &[f32]) {
        if self.per_partition == 0 || self.max_partitions == 0 {
            return;
        }
        let Some(unit) = normalized(vector) else {
            return;
        };
        let mut inner = self.write();
        let name = inner.ensure_partition(partition, self.max_partitions);
        inner.put(&name, key, unit, self.per_partition);
        while inner.total > self.max_entries && inner.evict_oldest_entry() {}
    }

    /// The entry most similar to `vector` in `partition` with similarity >= `threshold`: (key,
    /// similarity). Entries of another dimension are skipped; on a tie the newest wins.
    pub fn best(&self, partition: &str, vector: &[f32], threshold: f32) -> Option<(String, f32)> {
        let n = norm(vector)?;
        let inner = self.read();
        let entries = inner.partitions.get(partition)?;
        let mut best: Option<(&Entry, f32)> = None;
        for entry in entries.iter().rev() {
            if entry.unit.len() != vector.len() {
                continue;
            }
            let sim = similarity(dot(&entry.unit, vector) / n);
            if sim >= threshold && best.is_none_or(|(_, b)| sim > b) {
                best = Some((entry, sim));
            }
        }
        best.map(|(entry, sim)| (entry.key.to_string(), sim))
    }

    /// Drop the entries with this exact cache key wherever they are (their partitions stay).
    pub fn remove_key(&self, key: &str) {
        let mut inner = self.write();
        let Some(partitions) = inner.owners.remove(key) else {
            return;
        };
        for name in partitions {
            if let Some(entries) = inner.partitions.get_mut(&name) {
                let before = entries.len();
                entries.retain(|e| &*e.key != key);
                let removed = before - entries.len();
                inner.total = inner.total.saturating_sub(removed);
            }
        }
    }

    /// Drop everything (entries and partitions).
    pub fn clear(&self) {
        *self.write() = Inner::default();
    }

    /// Entries in all partitions.
    pub fn len(&self) -> usize {
        self.read().partitions.values().map(VecDeque::len).sum()
    }

    /// Whether there are no entries at all.
    pub fn is_empty(&self) -> bool {
        self.read().partitions.values().all(VecDeque::is_empty)
    }

    /// Whether the partition exists: something was stored in it since the last [`Index::clear`]
    /// and it has not been dropped for `max_partitions` (it may be empty after
    /// [`Index::remove_key`]).
    pub fn has_partition(&self, partition: &str) -> bool {
        self.read().partitions.contains_key(partition)
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("per_partition", &self.per_partition)
            .field("max_partitions", &self.max_partitions)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The partition's shared name, creating it when new (after dropping the oldest-created
    /// partitions so there are fewer than `max`).
    fn ensure_partition(&mut self, partition: &str, max: usize) -> Arc<str> {
        if let Some((name, _)) = self.partitions.get_key_value(partition) {
            return Arc::clone(name);
        }
        while self.partitions.len() >= max && self.drop_oldest_partition() {}
        let name: Arc<str> = Arc::from(partition);
        self.partitions.insert(Arc::clone(&name), VecDeque::new());
        self.created.push_back(Arc::clone(&name));
        name
    }

    /// Drop the oldest-created partition (false when there is none).
    fn drop_oldest_partition(&mut self) -> bool {
        let Some(name) = self.created.pop_front() else {
            return false;
        };
        for entry in self.partitions.remove(&name).unwrap_or_default() {
            self.total = self.total.saturating_sub(1);
            self.unlink(&entry.key, &name);
        }
        true
    }

    /// Drop the oldest entry of the oldest-created partition (the partition too once empty);
    /// false when there is nothing to drop.
    fn evict_oldest_entry(&mut self) -> bool {
        let Some(name) = self.created.front().cloned() else {
            return false;
        };
        let oldest = self.partitions.get_mut(&name).and_then(VecDeque::pop_front);
        if let Some(entry) = oldest {
            self.total = self.total.saturating_sub(1);
            self.unlink(&entry.key, &name);
        }
        if self.partitions.get(&name).is_none_or(VecDeque::is_empty) {
            self.partitions.remove(&name);
            self.created.pop_front();
        }
        true
    }

    /// Store `key` in the (existing) partition `name` as its newest entry, replacing an entry
    /// with the same key and evicting the oldest beyond `per_partition`.
    fn put(&mut self, name: &Arc<str>, key: &str, unit: Box<[f32]>, per_partition: usize) {
        let Some(entries) = self.partitions.get_mut(name) else {
            return;
        };
        if let Some(i) = entries.iter().position(|e| &*e.key == key) {
            if let Some(mut entry) = entries.remove(i) {
                entry.unit = unit;
                entries.push_back(entry);
            }
            return;
        }
        let key: Arc<str> = Arc::from(key);
        entries.push_back(Entry {
            key: Arc::clone(&key),
            unit,
        });
        self.total += 1;
        let evicted = if entries.len() > per_partition {
            entries.pop_front()
        } else {
            None
        };
        if evicted.is_some() {
            self.total = self.total.saturating_sub(1);
        }
        self.owners.entry(key).or_default().push(Arc::clone(name));
        if let Some(old) = evicted {
            self.unlink(&old.key, name);
        }
    }

    /// Forget that `partition` holds an entry for `key`.
    fn unlink(&mut self, key: &str, partition: &str) {
        let Some(partitions) = self.owners.get_mut(key) else {
            return;
        };
        partitions.retain(|p| &**p != partition);
        if partitions.is_empty() {
            self.owners.remove(key);
        }
    }
}

#[cfg(test)]
mod total_cap_tests {
    use super::*;

    #[test]
    fn prompts_with_images_are_not_text_only() {
        assert!(text_only(
            br#"{"messages":[{"role":"user","content":"hi"}]}"#
        ));
        assert!(text_only(br#"{"prompt":"hi"}"#));
        assert!(text_only(
            br#"{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#
        ));
        assert!(!text_only(
            br#"{"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#
        ));
        assert!(!text_only(b"nope"));
    }

    #[test]
    fn total_cap_evicts_the_oldest_partitions_oldest_entries() {
        let idx = Index::new(10, 10).with_max_entries(3);
        idx.insert("p1", "a", &[1.0, 0.0]);
        idx.insert("p1", "b", &[0.0, 1.0]);
        idx.insert("p2", "c", &[1.0, 0.0]);
        idx.insert("p2", "d", &[0.0, 1.0]);
        assert_eq!(idx.len(), 3);
        assert!(idx.best("p1", &[1.0, 0.0], 0.99).is_none());
        assert_eq!(idx.best("p1", &[0.0, 1.0], 0.99).unwrap().0, "b");
        idx.insert("p2", "e", &[1.0, 1.0]);
        assert_eq!(idx.len(), 3);
        assert!(!idx.has_partition("p1"));
        idx.remove_key("c");
        assert_eq!(idx.len(), 2);
        idx.insert("p3", "f", &[1.0, 0.0]);
        idx.insert("p3", "g", &[0.0, 1.0]);
        assert_eq!(idx.len(), 3);
        assert_eq!(idx.best("p3", &[0.0, 1.0], 0.99).unwrap().0, "g");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(body: Value) -> Option<String> {
        prompt_text(body.to_string().as_bytes())
    }

    fn embedding(body: Value) -> Option<Vec<f32>> {
        embedding_of(body.to_string().as_bytes())
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn index_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Index>();
    }

    #[test]
    fn prompt_text_string_content() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "Hello there"}]});
        assert_eq!(text(body).unwrap(), "user: Hello there\n");
    }

    #[test]
    fn prompt_text_parts_skip_images() {
        let body = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "text", "text": "this picture?"}
        ]}]});
        assert_eq!(text(body).unwrap(), "user: What is in\nthis picture?\n");
    }

    #[test]
    fn prompt_text_several_messages_ignores_tool_calls() {
        let body = json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
            {"role": "assistant", "content": "It is sunny."}
        ]});
        assert_eq!(
            text(body).unwrap(),
            "system: Be brief.\nuser: Weather in Paris?\ntool: sunny\nassistant: It is sunny.\n"
        );
    }

    #[test]
    fn prompt_text_completion() {
        assert_eq!(
            text(json!({"model": "m", "prompt": "Once upon"})).unwrap(),
            "Once upon"
        );
        assert_eq!(
            text(json!({"prompt": ["one", "two", "three"]})).unwrap(),
            "one\ntwo\nthree"
        );
    }

    #[test]
    fn prompt_text_none() {
        assert_eq!(prompt_text(b"not json"), None);
        assert_eq!(prompt_text(b""), None);
        assert_eq!(text(json!(["a", "b"])), None);
        assert_eq!(text(json!("a string")), None);
        assert_eq!(text(json!({"model": "m"})), None);
        assert_eq!(text(json!({"messages": []})), None);
        assert_eq!(
            text(json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "x"}}
            ]}]})),
            None
        );
        assert_eq!(text(json!({"prompt": ""})), None);
        assert_eq!(text(json!({"prompt": []})), None);
        assert_eq!(text(json!({"prompt": [1, 2, 3]})), None);
        assert_eq!(text(json!({"prompt": [[1, 2], [3]]})), None);
        assert_eq!(text(json!({"prompt": 7})), None);
    }

    #[test]
    fn embedding_of_openai_answer() {
        let body = json!({
            "object": "list",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292, 1, -2e-3]},
                {"object": "embedding", "index": 1, "embedding": [9.0, 9.0, 9.0, 9.0]}
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 8, "total_tokens": 8}
        });
        assert_eq!(
            embedding(body).unwrap(),
            vec![0.0023064255, -0.009327292, 1.0, -0.002]
        );
    }

    #[test]
    fn embedding_of_bad_shapes() {
        assert_eq!(embedding_of(b"{"), None);
        assert_eq!(embedding(json!([])), None);
        assert_eq!(embedding(json!({"data": []})), None);
        assert_eq!(embedding(json!({"data": {"embedding": [1.0]}})), None);
        assert_eq!(embedding(json!({"data": [{"index": 0}]})), None);
        assert_eq!(
            embedding(json!({"data": [{"embedding": "AACAPwAAAEA="}]})),
            None
        );
        assert_eq!(embedding(json!({"data": [{"embedding": []}]})), None);
        assert_eq!(
            embedding(json!({"data": [{"embedding": [1.0, "2"]}]})),
            None
        );
        assert_eq!(
            embedding(json!({"data": [{"embedding": [1.0, null]}]})),
            None
        );
        // finite as f64 but not as f32
        assert_eq!(
            embedding(json!({"data": [{"embedding": [1.0, 1e300]}]})),
            None
        );
        let too_long = vec![0.5; MAX_DIMENSIONS + 1];
        assert_eq!(embedding(json!({"data": [{"embedding": too_long}]})), None);
        let longest = vec![0.5; MAX_DIMENSIONS];
        assert_eq!(
            embedding(json!({"data": [{"embedding": longest}]}))
                .unwrap()
                .len(),
            MAX_DIMENSIONS
        );
    }

    #[test]
    fn vector_bytes_round_trip() {
        let v = vec![1.0, -0.5, 0.0, f32::MAX, f32::MIN_POSITIVE, 1e-45];
        let bytes = encode_vector(&v);
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[..4], &1.0f32.to_le_bytes());
        assert_eq!(decode_vector(&bytes).unwrap(), v);
    }

    #[test]
    fn decode_vector_rejects() {
        assert_eq!(decode_vector(&[]), None);
        assert_eq!(decode_vector(&[0, 0, 128]), None);
        assert_eq!(decode_vector(&[0, 0, 128, 63, 0]), None);
        assert_eq!(decode_vector(&encode_vector(&[1.0, f32::NAN])), None);
        assert_eq!(decode_vector(&encode_vector(&[f32::INFINITY])), None);
        assert_eq!(
            decode_vector(&encode_vector(&vec![1.0; MAX_DIMENSIONS + 1])),
            None
        );
        assert_eq!(
            decode_vector(&encode_vector(&vec![1.0; MAX_DIMENSIONS]))
                .unwrap()
                .len(),
            MAX_DIMENSIONS
        );
    }

    #[test]
    fn cosine_cases() {
        assert!(close(cosine(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0));
        assert!(close(cosine(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), 1.0));
        assert!(close(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0));
        assert!(close(cosine(&[1.0, 2.0], &[-1.0, -2.0]), -1.0));
        assert!(close(cosine(&[1.0, 0.0], &[1.0, 1.0]), 0.5f32.sqrt()));
        assert_eq!(cosine(&[1.0, 2.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine(&[1.0, 2.0], &[0.0, 0.0]), 0.0);
        assert_eq!(cosine(&[], &[]), 0.0);
        assert_eq!(cosine(&[f32::NAN, 1.0], &[1.0, 1.0]), 0.0);
        // no overflow with large values
        assert!(close(
            cosine(&[f32::MAX, f32::MAX], &[f32::MAX, f32::MAX]),
            1.0
        ));
    }

    #[test]
    fn index_threshold_hit_and_miss() {
        let index = Index::new(10, 10);
        index.insert("p", "k1", &[1.0, 0.0, 0.0]);
        let (key, sim) = index.best("p", &[2.0, 0.1, 0.0], 0.95).unwrap();
        assert_eq!(key, "k1");
        assert!(sim > 0.99 && sim <= 1.0);
        assert_eq!(index.best("p", &[1.0, 1.0, 0.0], 0.95), None);
        assert!(index.best("p", &[1.0, 1.0, 0.0], 0.7).is_some());
        assert_eq!(index.best("p", &[0.0, 0.0, 0.0], -1.0), None);
        assert_eq!(index.best("other", &[1.0, 0.0, 0.0], 0.5), None);
    }

    #[test]
    fn index_best_of_several() {
        let index = Index::new(10, 10);
        index.insert("p", "x", &[1.0, 0.0]);
        index.insert("p", "diag", &[1.0, 1.0]);
        index.insert("p", "y", &[0.0, 1.0]);
        let (key, sim) = index.best("p", &[0.9, 1.0], 0.5).unwrap();
        assert_eq!(key, "diag");
        assert!(close(sim, cosine(&[1.0, 1.0], &[0.9, 1.0])));
        assert_eq!(index.best("p", &[0.0, 3.0], 0.5).unwrap().0, "y");
        assert_eq!(index.best("p", &[-1.0, -1.0], 0.0), None);
    }

    #[test]
    fn index_replaces_same_key() {
        let index = Index::new(10, 10);
        index.insert("p", "k", &[1.0, 0.0]);
        index.insert("p", "k", &[0.0, 1.0]);
        assert_eq!(index.len(), 1);
        assert_eq!(index.best("p", &[1.0, 0.0], 0.5), None);
        assert_eq!(index.best("p", &[0.0, 1.0], 0.5).unwrap().0, "k");
    }

    #[test]
    fn index_fifo_eviction() {
        let index = Index::new(2, 10);
        index.insert("p", "a", &[1.0, 0.0, 0.0]);
        index.insert("p", "b", &[0.0, 1.0, 0.0]);
        index.insert("p", "c", &[0.0, 0.0, 1.0]);
        assert_eq!(index.len(), 2);
        assert_eq!(index.best("p", &[1.0, 0.0, 0.0], 0.5), None);
        assert_eq!(index.best("p", &[0.0, 1.0, 0.0], 0.5).unwrap().0, "b");
        assert_eq!(index.best("p", &[0.0, 0.0, 1.0], 0.5).unwrap().0, "c");
        // replacing makes an entry the newest: "b" is replaced, so "c" goes next
        index.insert("p", "b", &[0.0, 1.0, 0.0]);
        index.insert("p", "d", &[1.0, 0.0, 0.0]);
        assert_eq!(index.best("p", &[0.0, 0.0, 1.0], 0.5), None);
        assert_eq!(index.best("p", &[0.0, 1.0, 0.0], 0.5).unwrap().0, "b");
        assert_eq!(index.best("p", &[1.0, 0.0, 0.0], 0.5).unwrap().0, "d");
        // an evicted key is forgotten everywhere, so removing it later is harmless
        index.remove_key("a");
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn index_partition_isolation() {
        let index = Index::new(10, 10);
        index.insert("p1", "k1", &[1.0, 0.0]);
        index.insert("p2", "k2", &[1.0, 0.0]);
        assert_eq!(index.best("p1", &[1.0, 0.0], 0.9).unwrap().0, "k1");
        assert_eq!(index.best("p2", &[1.0, 0.0], 0.9).unwrap().0, "k2");
        assert_eq!(index.best("p3", &[1.0, 0.0], 0.9), None);
        assert!(index.has_partition("p1") && index.has_partition("p2"));
        assert!(!index.has_partition("p3"));
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn index_remove_key() {
        let index = Index::new(10, 10);
        index.insert("p1", "k", &[1.0, 0.0]);
        index.insert("p2", "k", &[1.0, 0.0]);
        index.insert("p1", "other", &[0.8, 0.2]);
        index.remove_key("k");
        assert_eq!(index.len(), 1);
        assert_eq!(index.best("p1", &[1.0, 0.0], 0.5).unwrap().0, "other");
        assert_eq!(index.best("p2", &[1.0, 0.0], 0.5), None);
        // the partitions stay
        assert!(index.has_partition("p2"));
        index.remove_key("missing");
        assert_eq!(index.len(), 1);
        // the key can come back
        index.insert("p2", "k", &[1.0, 0.0]);
        assert_eq!(index.best("p2", &[1.0, 0.0], 0.5).unwrap().0, "k");
    }

    #[test]
    fn index_clear() {
        let index = Index::new(10, 10);
        index.insert("p1", "a", &[1.0, 0.0]);
        index.insert("p2", "b", &[0.0, 1.0]);
        assert!(!index.is_empty());
        index.clear();
        assert!(index.is_empty());
        assert_eq!(index.len(), 0);
        assert!(!index.has_partition("p1"));
        assert_eq!(index.best("p1", &[1.0, 0.0], 0.0), None);
        index.insert("p1", "a", &[1.0, 0.0]);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn index_skips_zero_and_bad_vectors() {
        let index = Index::new(10, 10);
        index.insert("p", "zero", &[0.0, 0.0]);
        index.insert("p", "empty", &[]);
        index.insert("p", "nan", &[f32::NAN, 1.0]);
        index.insert("p", "inf", &[f32::INFINITY, 1.0]);
        assert!(index.is_empty());
        assert!(!index.has_partition("p"));
        // a zero vector does not replace a stored one either
        index.insert("p", "k", &[1.0, 0.0]);
        index.insert("p", "k", &[0.0, 0.0]);
        assert_eq!(index.best("p", &[1.0, 0.0], 0.9).unwrap().0, "k");
    }

    #[test]
    fn index_skips_other_dimensions() {
        let index = Index::new(10, 10);
        index.insert("p", "three", &[1.0, 0.0, 0.0]);
        index.insert("p", "two", &[1.0, 0.0]);
        assert_eq!(index.best("p", &[1.0, 0.0], 0.5).unwrap().0, "two");
        assert_eq!(index.best("p", &[1.0, 0.0, 0.0], 0.5).unwrap().0, "three");
        assert_eq!(index.best("p", &[1.0], 0.0), None);
    }

    #[test]
    fn index_large_values_do_not_overflow() {
        let index = Index::new(10, 10);
        index.insert("p", "k", &[f32::MAX, f32::MAX]);
        let (key, sim) = index.best("p", &[f32::MAX, f32::MAX], 0.99).unwrap();
        assert_eq!(key, "k");
        assert!(close(sim, 1.0));
    }

    #[test]
    fn index_max_partitions() {
        let index = Index::new(10, 2);
        index.insert("p1", "a", &[1.0, 0.0]);
        index.insert("p2", "b", &[1.0, 0.0]);
        // inserting into an existing partition does not count as creating it
        index.insert("p1", "c", &[0.0, 1.0]);
        index.insert("p3", "d", &[1.0, 0.0]);
        assert!(!index.has_partition("p1"));
        assert!(index.has_partition("p2") && index.has_partition("p3"));
        assert_eq!(index.len(), 2);
        assert_eq!(index.best("p1", &[1.0, 0.0], 0.5), None);
        // the dropped partition's keys are forgotten
        index.remove_key("a");
        assert_eq!(index.len(), 2);
        index.insert("p4", "e", &[1.0, 0.0]);
        assert!(!index.has_partition("p2"));
        assert_eq!(index.best("p4", &[1.0, 0.0], 0.5).unwrap().0, "e");
    }

    #[test]
    fn index_zero_capacity_stores_nothing() {
        let index = Index::new(0, 10);
        index.insert("p", "k", &[1.0]);
        assert!(index.is_empty() && !index.has_partition("p"));
        let index = Index::new(10, 0);
        index.insert("p", "k", &[1.0]);
        assert!(index.is_empty() && !index.has_partition("p"));
    }

    #[test]
    fn index_shared_between_threads() {
        let index = Arc::new(Index::new(200, 10));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let index = Arc::clone(&index);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let v = [t as f32 + 1.0, i as f32];
                        index.insert("p", &format!("{t}-{i}"), &v);
                        assert!(index.best("p", &v, 0.999).is_some());
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(index.len(), 200);
    }
}
