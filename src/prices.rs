//! The model price map (LiteLLM's `model_prices_and_context_window.json`, trimmed by
//! `scripts/refresh-prices` and embedded at compile time) and per-deployment price resolution.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::{Map, Value};

static MAP_JSON: &str = include_str!("../data/model_prices.json");

/// Rates that apply once the prompt is longer than `above` tokens.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tier {
    pub above: u64,
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_creation: Option<f64>,
}

/// What one deployment costs, in USD.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Price {
    pub input_per_token: f64,
    pub output_per_token: f64,
    /// Defaults to `input_per_token` when the map has no cache rate.
    pub cache_read_per_token: Option<f64>,
    pub cache_creation_per_token: Option<f64>,
    pub per_request: f64,
    pub input_per_image: f64,
    pub output_per_image: f64,
    pub input_per_second: f64,
    pub output_per_second: f64,
    /// OCR: per page processed (`ocr_cost_per_page`) and per page annotated
    /// (`annotation_cost_per_page`).
    pub ocr_per_page: f64,
    pub annotation_per_page: f64,
    /// Video generation: per second of video (`output_cost_per_video_per_second`, else
    /// `output_cost_per_second`).
    pub video_per_second: f64,
    /// Long-context tiers, lowest threshold first.
    pub tiers: Vec<Tier>,
    /// Rates of batch requests (`input_cost_per_token_batches`, `output_cost_per_token_batches`),
    /// when the map has them ([`Price::for_batches`]).
    pub input_per_token_batches: Option<f64>,
    pub output_per_token_batches: Option<f64>,
    /// The most output tokens the model can produce (worst case for budget reservations).
    pub max_output_tokens: Option<u64>,
    /// The longest prompt the model takes (pre-call context window checks).
    pub max_input_tokens: Option<u64>,
}

/// One entry of the map, made into its [`Price`] as it is read: only one entry's fields are
/// held at a time (the whole map as JSON values would take about 4 MiB at startup, memory the
/// allocator then keeps).
struct Entry(Arc<Price>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fields = HashMap::<String, Value>::deserialize(d)?;
        Ok(Entry(Arc::new(Price::from_fields(&fields))))
    }
}

fn map() -> &'static HashMap<String, Arc<Price>> {
    static MAP: OnceLock<HashMap<String, Arc<Price>>> = OnceLock::new();
    MAP.get_or_init(|| {
        let raw: HashMap<String, Entry> = serde_json::from_str(MAP_JSON).unwrap_or_default();
        raw.into_iter().map(|(k, e)| (k, e.0)).collect()
    })
}

/// The map as written (for listings; read on first use).
fn raw() -> &'static HashMap<String, Map<String, Value>> {
    static RAW: OnceLock<HashMap<String, Map<String, Value>>> = OnceLock::new();
    RAW.get_or_init(|| serde_json::from_str(MAP_JSON).unwrap_or_default())
}

fn num(fields: &HashMap<String, Value>, k: &str) -> Option<f64> {
    fields
        .get(k)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

/// `input_cost_per_token_above_200k_tokens` -> (`input_cost_per_token`, 200_000).
fn tier_field(k: &str) -> Option<(&str, u64)> {
    let (base, rest) = k.split_once("_above_")?;
    let n = rest.strip_suffix("k_tokens")?.parse::<u64>().ok()?;
    Some((base, n * 1000))
}

impl Price {
    fn from_fields(f: &HashMap<String, Value>) -> Self {
        let mut p = Price::default();
        p.apply(|k| num(f, k));
        let mut tiers: Vec<Tier> = Vec::new();
        for (k, v) in f {
            let (Some((base, above)), Some(v)) = (tier_field(k), v.as_f64()) else {
                continue;
            };
            let i = match tiers.iter().position(|t| t.above == above) {
                Some(i) => i,
                None => {
                    tiers.push(Tier {
                        above,
                        ..Tier::default()
                    });
                    tiers.len() - 1
                }
            };
            let t = &mut tiers[i];
            match base {
                "input_cost_per_token" => t.input = Some(v),
                "output_cost_per_token" => t.output = Some(v),
                "cache_read_input_token_cost" => t.cache_read = Some(v),
                "cache_creation_input_token_cost" => t.cache_creation = Some(v),
                _ => {}
            }
        }
        tiers.sort_by_key(|t| t.above);
        p.tiers = tiers;
        p.max_output_tokens = f
            .get("max_output_tokens")
            .or_else(|| f.get("max_tokens"))
            .and_then(Value::as_u64);
        p
    }

    /// Overwrite the rates `get` knows (map fields, or `model_info` / `tianji_params` overrides).
    fn apply(&mut self, get: impl Fn(&str) -> Option<f64>) {
        let set = |slot: &mut f64, k: &str| {
            if let Some(v) = get(k) {
                *slot = v;
            }
        };
        set(&mut self.input_per_token, "input_cost_per_token");
        set(&mut self.output_per_token, "output_cost_per_token");
        set(&mut self.per_request, "input_cost_per_request");
        set(&mut self.input_per_image, "input_cost_per_image");
        set(&mut self.output_per_image, "output_cost_per_image");
        set(&mut self.input_per_second, "input_cost_per_second");
        set(&mut self.output_per_second, "output_cost_per_second");
        set(&mut self.ocr_per_page, "ocr_cost_per_page");
        set(&mut self.annotation_per_page, "annotation_cost_per_page");
        set(&mut self.video_per_second, "output_cost_per_second");
        set(
            &mut self.video_per_second,
            "output_cost_per_video_per_second",
        );
        if let Some(v) = get("cache_read_input_token_cost") {
            self.cache_read_per_token = Some(v);
        }
        if let Some(v) = get("cache_creation_input_token_cost") {
            self.cache_creation_per_token = Some(v);
        }
        if let Some(v) = get("input_cost_per_token_batches") {
            self.input_per_token_batches = Some(v);
        }
        if let Some(v) = get("output_cost_per_token_batches") {
            self.output_per_token_batches = Some(v);
        }
        if let Some(v) = get("max_output_tokens") {
            self.max_output_tokens = Some(v as u64);
        }
        if let Some(v) = get("max_input_tokens") {
            self.max_input_tokens = Some(v as u64);
        }
    }

    /// The price of requests sent in a batch: the batch rates where the map has them (the
    /// usual ones otherwise; long-context tiers do not apply to batch rates).
    pub fn for_batches(&self) -> Price {
        let mut p = self.clone();
        if let Some(v) = self.input_per_token_batches {
            p.input_per_token = v;
            p.tiers.clear();
        }
        if let Some(v) = self.output_per_token_batches {
            p.output_per_token = v;
            p.tiers.clear();
        }
        p
    }

    /// The price map entry for `provider/model`: tried as written, then the bare model name,
    /// then the `provider/model` key of the map.
    pub fn lookup(provider: &str, model: &str) -> Option<Arc<Price>> {
        let m = map();
        let full = format!("{provider}/{model}");
        m.get(&full)
            .or_else(|| m.get(model))
            .or_else(|| model.rsplit_once('/').and_then(|(_, tail)| m.get(tail)))
            .cloned()
    }

    /// The price map's own fields for `provider/model` (the same lookups as [`Price::lookup`]),
    /// as listings show them: `mode`, `max_tokens`, costs, and `provider` as `litellm_provider`.
    pub fn fields(provider: &str, model: &str) -> Option<Map<String, Value>> {
        let m = raw();
        let full = format!("{provider}/{model}");
        let f = m
            .get(&full)
            .or_else(|| m.get(model))
            .or_else(|| model.rsplit_once('/').and_then(|(_, tail)| m.get(tail)))?;
        Some(
            f.iter()
                .map(|(k, v)| match k.as_str() {
                    "provider" => ("litellm_provider".to_string(), v.clone()),
                    _ => (k.clone(), v.clone()),
                })
                .collect(),
        )
    }

    /// The price map's models of `provider` (LiteLLM's `models_by_provider`: its provider
    /// names such as `vertex_ai-language-models` count for `vertex_ai`), sorted.
    pub fn models_of(provider: &str) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = raw()
            .iter()
            .filter(|(_, f)| {
                f.get("provider").and_then(Value::as_str).is_some_and(|p| {
                    p == provider
                        || p.strip_prefix(provider)
                            .is_some_and(|rest| rest.starts_with('-'))
                })
            })
            .map(|(k, _)| k.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// The price of a deployment: `model_info.base_model` or the provider's model in the map,
    /// then any cost fields set in `model_info` or `tianji_params` (those win).
    pub fn for_deployment(
        provider: &str,
        model: &str,
        model_info: &Map<String, Value>,
        overrides: &Map<String, Value>,
    ) -> Option<Arc<Price>> {
        let base = model_info
            .get("base_model")
            .and_then(Value::as_str)
            .and_then(|b| {
                let (p, m) = b.split_once('/').unwrap_or((provider, b));
                Price::lookup(p, m)
            })
            .or_else(|| Price::lookup(provider, model));
        let has_override = |src: &Map<String, Value>| {
            src.keys()
                .any(|k| k.contains("cost_per") || k.ends_with("_token_cost"))
        };
        if !has_override(model_info) && !has_override(overrides) {
            return base;
        }
        let mut p = base.map(|b| (*b).clone()).unwrap_or_default();
        for src in [model_info, overrides] {
            p.apply(|k| src.get(k).and_then(Value::as_f64).filter(|v| v.is_finite()));
        }
        Some(Arc::new(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_rates_where_the_map_has_them() {
        let p = Price::lookup("anthropic", "claude-haiku-4-5").unwrap();
        let b = p.for_batches();
        assert_eq!((b.input_per_token, b.output_per_token), (5e-7, 2.5e-6));
        assert_eq!(p.input_per_token, 1e-6);
        let plain = Price {
            input_per_token: 1.0,
            ..Price::default()
        };
        assert_eq!(plain.for_batches(), plain);
    }

    #[test]
    fn map_has_known_models_with_tiers() {
        let p = Price::lookup("openai", "gpt-4o").unwrap();
        assert_eq!(p.input_per_token, 2.5e-6);
        assert_eq!(p.output_per_token, 1e-5);
        assert_eq!(p.cache_read_per_token, Some(1.25e-6));
        assert_eq!(p.max_output_tokens, Some(16384));
        let g = Price::lookup("gemini", "gemini-2.5-pro").unwrap();
        assert_eq!(g.tiers.len(), 1);
        assert_eq!(g.tiers[0].above, 200_000);
        assert_eq!(g.tiers[0].input, Some(2.5e-6));
        assert!(Price::lookup("azure", "gpt-4o").is_some());
        assert!(Price::lookup("openai", "no-such-model").is_none());
        let w = Price::lookup("openai", "whisper-1").unwrap();
        assert_eq!(w.input_per_second, 1e-4);
    }

    #[test]
    fn overrides_win_and_base_model_is_used() {
        let mut info = Map::new();
        info.insert("base_model".into(), Value::from("gpt-4o"));
        let p = Price::for_deployment("azure", "my-deploy", &info, &Map::new()).unwrap();
        assert_eq!(p.input_per_token, 2.5e-6);
        let mut params = Map::new();
        params.insert("input_cost_per_token".into(), Value::from(1.0));
        let p = Price::for_deployment("openai", "custom", &Map::new(), &params).unwrap();
        assert_eq!((p.input_per_token, p.output_per_token), (1.0, 0.0));
        assert!(Price::for_deployment("openai", "custom", &Map::new(), &Map::new()).is_none());
    }

    #[test]
    fn models_by_provider_and_their_fields() {
        let a = Price::models_of("anthropic");
        assert!(a.contains(&"claude-haiku-4-5"), "{a:?}");
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
        assert!(
            Price::models_of("vertex_ai").len()
                > Price::models_of("vertex_ai-language-models").len()
        );
        assert!(Price::models_of("no-such-provider").is_empty());
        let f = Price::fields("anthropic", "claude-haiku-4-5").unwrap();
        assert_eq!(f["litellm_provider"], "anthropic");
        assert_eq!(f["mode"], "chat");
        assert!(f.get("provider").is_none());
    }
}
