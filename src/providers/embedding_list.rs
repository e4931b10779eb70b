//! OpenAI's embeddings list (`{"object": "list", "data": [{"embedding": ...}], "usage": ...}`)
//! and its two forms of a vector: a list of floats, or with `encoding_format: "base64"` the
//! vector's little-endian `f32` bytes in base64 (about 4 KB for 768 dimensions instead of about
//! 9 KB of decimals, and read without parsing a float).

use std::fmt;

use base64::Engine as _;
use serde::Deserializer;
use serde::de::{self, SeqAccess, Visitor};
use serde_json::{Value, json};

/// Whether the OpenAI embeddings request asked for base64 vectors.
pub fn wants_base64(req: &Value) -> bool {
    req.get("encoding_format").and_then(Value::as_str) == Some("base64")
}

/// `floats` as OpenAI's base64 form.
pub fn encode(floats: &[f32]) -> String {
    let mut bytes = Vec::with_capacity(floats.len() * 4);
    for f in floats {
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Rewrite each `data[].embedding` list of floats of an OpenAI embeddings list in the base64
/// form.
pub fn encode_base64(list: &mut Value) {
    let Some(data) = list.get_mut("data").and_then(Value::as_array_mut) else {
        return;
    };
    for item in data {
        let Some(floats) = item.get("embedding").and_then(Value::as_array) else {
            continue;
        };
        let floats: Vec<f32> = floats
            .iter()
            .map(|f| f.as_f64().unwrap_or(0.0) as f32)
            .collect();
        item["embedding"] = json!(encode(&floats));
    }
}

/// The vector of a base64 `embedding`; `None` when it is not base64 of whole `f32`s.
/// (base64-simd: the gateway's own embeddings come this way, 4 KB a vector; the `base64`
/// crate's decoder took a tenth of a RAG ingest's CPU.)
pub fn decode(text: &str) -> Option<Vec<f32>> {
    let bytes = base64_simd::STANDARD.decode_to_vec(text).ok()?;
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

/// Deserialize an `embedding` in either form (`#[serde(deserialize_with = "vector")]`).
pub fn vector<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    struct Either;
    impl<'de> Visitor<'de> for Either {
        type Value = Vec<f32>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of numbers or a base64 string of little-endian f32s")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<f32>, E> {
            decode(v).ok_or_else(|| E::custom("an embedding that is not base64 of f32s"))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f32>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(x) = seq.next_element::<f32>()? {
                out.push(x);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Either)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(deserialize_with = "vector")]
        embedding: Vec<f32>,
    }

    #[test]
    fn both_forms_read_the_same_vector() {
        let v = [0.25f32, -1.5, 3.0e-7, 42.0];
        let floats: Item = serde_json::from_str(r#"{"embedding":[0.25,-1.5,3e-7,42]}"#).unwrap();
        let b64: Item = serde_json::from_value(json!({ "embedding": encode(&v) })).unwrap();
        assert_eq!(floats.embedding, v);
        assert_eq!(b64.embedding, v);
        // OpenAI's own answer for [1.0, 0.0]
        assert_eq!(decode("AACAPwAAAAA=").unwrap(), vec![1.0, 0.0]);
    }

    #[test]
    fn base64_of_partial_floats_or_bad_text_is_refused() {
        assert!(decode("AAAA").is_none()); // 3 bytes
        assert!(decode("not base64!").is_none());
        let bad = serde_json::from_str::<Item>(r#"{"embedding":"AAAA"}"#);
        assert!(bad.is_err());
        assert!(serde_json::from_str::<Item>(r#"{"embedding":{"a":1}}"#).is_err());
    }

    #[test]
    fn a_float_list_is_rewritten_as_base64() {
        let mut list = json!({"data": [{"embedding": [1.0, 0.0]}, {"embedding": "kept"}]});
        encode_base64(&mut list);
        assert_eq!(list["data"][0]["embedding"], "AACAPwAAAAA=");
        assert_eq!(list["data"][1]["embedding"], "kept");
    }
}
