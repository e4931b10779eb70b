//! Cost of one request from its usage and the deployment's [`Price`], the way LiteLLM's
//! generic per-token pricing does it: cached prompt tokens at the cache rates, the rest at the
//! input rate, and the long-context tier's rates for the whole request once the prompt passes
//! its threshold.

use super::usage::Usage;
use crate::prices::Price;

/// Units a request consumed besides tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra {
    pub images_in: u32,
    pub images_out: u32,
    pub seconds_in: f64,
    pub seconds_out: f64,
    /// OCR: the pages the provider reported (`usage_info`).
    pub pages: Option<Pages>,
}

/// The pages an OCR call processed, as its answer's `usage_info` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pages {
    /// `pages_processed`
    pub processed: u64,
    /// `pages_processed_annotation`
    pub annotated: u64,
}

struct Rates {
    input: f64,
    output: f64,
    cache_read: f64,
    cache_creation: f64,
}

fn rates(p: &Price, prompt_tokens: u64) -> Rates {
    let mut r = Rates {
        input: p.input_per_token,
        output: p.output_per_token,
        cache_read: p.cache_read_per_token.unwrap_or(p.input_per_token),
        cache_creation: p.cache_creation_per_token.unwrap_or(p.input_per_token),
    };
    if let Some(t) = p.tiers.iter().rev().find(|t| prompt_tokens > t.above) {
        r.input = t.input.unwrap_or(r.input);
        r.output = t.output.unwrap_or(r.output);
        r.cache_read = t.cache_read.or(p.cache_read_per_token).unwrap_or(r.input);
        r.cache_creation = t.cache_creation.unwrap_or(r.cache_creation);
    }
    r
}

/// USD for `usage` (and `extra` units) at `price`.
pub fn cost(price: &Price, usage: &Usage, extra: Extra) -> f64 {
    let r = rates(price, usage.prompt_tokens);
    let cached = usage.cache_read_tokens + usage.cache_creation_tokens;
    let text = usage.prompt_tokens.saturating_sub(cached);
    let prompt = text as f64 * r.input
        + usage.cache_read_tokens as f64 * r.cache_read
        + usage.cache_creation_tokens as f64 * r.cache_creation;
    let completion = usage.completion_tokens as f64 * r.output;
    prompt
        + completion
        + price.per_request
        + f64::from(extra.images_in) * price.input_per_image
        + f64::from(extra.images_out) * price.output_per_image
        + extra.seconds_in * price.input_per_second
        + extra.seconds_out * price.output_per_second
        + extra.pages.map_or(0.0, |p| {
            p.processed as f64 * price.ocr_per_page + p.annotated as f64 * price.annotation_per_page
        })
}

/// Output tokens assumed for a budget reservation when neither the request (`max_tokens`) nor
/// the price map bounds them.
pub const DEFAULT_MAX_OUTPUT: u64 = 4096;

/// The most a request can cost: its prompt estimate at the input rate plus every output token it
/// may produce. Used to reserve budget at admission.
pub fn worst_case(price: &Price, prompt_estimate: u64, max_tokens: Option<u64>) -> f64 {
    let out = max_tokens
        .or(price.max_output_tokens)
        .unwrap_or(DEFAULT_MAX_OUTPUT);
    let r = rates(price, prompt_estimate);
    prompt_estimate as f64 * r.input + out as f64 * r.output + price.per_request
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::Tier;

    fn usage(p: u64, c: u64, read: u64, create: u64) -> Usage {
        Usage {
            prompt_tokens: p,
            completion_tokens: c,
            total_tokens: p + c,
            cache_read_tokens: read,
            cache_creation_tokens: create,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn tokens_and_cache_rates() {
        let p = Price::lookup("openai", "gpt-4o").unwrap();
        let c = cost(&p, &usage(1000, 100, 0, 0), Extra::default());
        assert!(close(c, 1000.0 * 2.5e-6 + 100.0 * 1e-5));
        let c = cost(&p, &usage(1000, 100, 400, 0), Extra::default());
        assert!(close(c, 600.0 * 2.5e-6 + 400.0 * 1.25e-6 + 100.0 * 1e-5));
    }

    #[test]
    fn long_context_tier_applies_to_the_whole_request() {
        let p = Price {
            input_per_token: 1.0,
            output_per_token: 2.0,
            tiers: vec![Tier {
                above: 200_000,
                input: Some(10.0),
                output: Some(20.0),
                ..Tier::default()
            }],
            ..Price::default()
        };
        assert!(close(
            cost(&p, &usage(200_000, 1, 0, 0), Extra::default()),
            200_002.0
        ));
        assert!(close(
            cost(&p, &usage(200_001, 1, 0, 0), Extra::default()),
            2_000_030.0
        ));
    }

    #[test]
    fn per_request_image_and_second_units() {
        let p = Price {
            per_request: 0.5,
            output_per_image: 0.04,
            input_per_second: 0.0001,
            ..Price::default()
        };
        let e = Extra {
            images_out: 2,
            seconds_in: 30.0,
            ..Extra::default()
        };
        assert!(close(cost(&p, &Usage::default(), e), 0.5 + 0.08 + 0.003));
    }

    #[test]
    fn ocr_pages_and_annotated_pages() {
        let p = Price::lookup("mistral", "mistral-ocr-latest").unwrap();
        assert!(p.ocr_per_page > 0.0 && p.annotation_per_page > 0.0);
        let e = Extra {
            pages: Some(Pages {
                processed: 3,
                annotated: 2,
            }),
            ..Extra::default()
        };
        let want = 3.0 * p.ocr_per_page + 2.0 * p.annotation_per_page;
        assert!(close(cost(&p, &Usage::default(), e), want));
        assert!(close(cost(&p, &Usage::default(), Extra::default()), 0.0));
    }

    #[test]
    fn worst_case_uses_max_tokens_then_the_map() {
        let p = Price::lookup("openai", "gpt-4o").unwrap();
        assert!(close(
            worst_case(&p, 10, Some(5)),
            10.0 * 2.5e-6 + 5.0 * 1e-5
        ));
        assert!(close(worst_case(&p, 0, None), 16384.0 * 1e-5));
    }
}
