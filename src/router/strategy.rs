//! Routing strategies: which of a group's open deployments serves the next request. Each one
//! reads the live [`super::stats::Stats`] that real requests keep up to date.

use std::sync::Arc;

use super::Deployment;
pub use crate::config::router::Strategy;

/// A uniform index below `n` (n > 0).
fn any(n: usize) -> usize {
    if n > 1 { fastrand::usize(..n) } else { 0 }
}

/// Pick one of `open` (not empty) by `strategy`.
pub fn pick(strategy: Strategy, open: &[Arc<Deployment>]) -> usize {
    match open.len() {
        0 | 1 => return 0,
        _ => {}
    }
    match strategy {
        Strategy::SimpleShuffle => weighted(open),
        Strategy::LeastBusy => lowest(open, |d| d.stats.in_flight() as f64),
        Strategy::LatencyBased => lowest(open, |d| d.stats.latency_us() as f64),
        Strategy::UsageBased => lowest(open, |d| d.stats.usage().1 as f64),
        Strategy::CostBased => lowest(open, |d| {
            d.price
                .as_ref()
                .map_or(f64::MAX, |p| p.input_per_token + p.output_per_token)
        }),
    }
}

/// Random by weight: `weight`, else `rpm`, else `tpm` of every deployment (uniform if any
/// lacks it).
fn weighted(open: &[Arc<Deployment>]) -> usize {
    let by = |f: &dyn Fn(&Deployment) -> Option<f64>| -> Option<Vec<f64>> {
        open.iter().map(|d| f(d).filter(|w| *w >= 0.0)).collect()
    };
    let weights = by(&|d| d.weight)
        .or_else(|| by(&|d| d.rpm.map(|r| r as f64)))
        .or_else(|| by(&|d| d.tpm.map(|t| t as f64)));
    let Some(w) = weights else {
        return any(open.len());
    };
    let total: f64 = w.iter().sum();
    if total.is_nan() || total <= 0.0 || !total.is_finite() {
        return any(open.len());
    }
    let mut x = fastrand::f64() * total;
    for (i, wi) in w.iter().enumerate() {
        if x < *wi {
            return i;
        }
        x -= wi;
    }
    open.len() - 1
}

/// The deployment with the lowest `score`, ties broken at random.
fn lowest(open: &[Arc<Deployment>], score: impl Fn(&Deployment) -> f64) -> usize {
    let mut best = f64::INFINITY;
    let mut ties = 0usize;
    let mut chosen = 0;
    for (i, d) in open.iter().enumerate() {
        let s = score(d);
        if s < best {
            best = s;
            chosen = i;
            ties = 1;
        } else if s == best {
            ties += 1;
            // reservoir sampling over the tied ones
            if fastrand::usize(..ties) == 0 {
                chosen = i;
            }
        }
    }
    chosen
}
