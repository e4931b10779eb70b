//! The dynamic rate limiter (`tianji_settings.callbacks: [dynamic_rate_limiter_v3]`): a model
//! group's capacity (the sum of its deployments' `rpm`/`tpm`) is always enforced; each priority
//! (`priority` in the team's, else the key's metadata) owns a share of it
//! (`priority_reservation`), enforced only once the model is saturated past
//! `saturation_threshold`; below it, priorities borrow freely. Requests without a reserved
//! priority share the `default_priority` pool. Both checks ride in the request's one limiter
//! call (the priority descriptor is gated on the saturation descriptor, see `lua/batch.lua`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::Descriptor;
use crate::auth::Principal;
pub use crate::config::limits::{Reservation, ReservationKind, ReservationSettings};
use crate::router::Deployment;

/// The callback name that turns the dynamic limiter on.
pub const CALLBACK: &str = "dynamic_rate_limiter_v3";

/// The model and priority pool a request was counted in (for the limiter's messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub model: String,
    /// The request's priority, or `default`.
    pub priority: String,
    pub model_rpm: Option<u64>,
    pub model_tpm: Option<u64>,
}

pub struct Priorities {
    reservations: BTreeMap<String, Reservation>,
    settings: ReservationSettings,
}

impl Priorities {
    /// `None` unless the dynamic limiter is among the callbacks.
    pub fn from_settings(
        callbacks: &[String],
        reservations: &BTreeMap<String, Reservation>,
        settings: &ReservationSettings,
    ) -> Option<Self> {
        callbacks.iter().any(|c| c == CALLBACK).then(|| Self {
            reservations: reservations.clone(),
            settings: settings.clone(),
        })
    }

    /// Normalised weights per priority for a model of this capacity (sum at most 1).
    fn weights(&self, rpm: Option<u64>, tpm: Option<u64>) -> HashMap<&str, f64> {
        let mut w: HashMap<&str, f64> = self
            .reservations
            .iter()
            .map(|(p, r)| {
                let v = match r {
                    Reservation::Share(v) => *v,
                    Reservation::Typed { kind, value } => match kind {
                        ReservationKind::Percent => *value,
                        ReservationKind::Rpm => rpm.map_or(0.0, |m| value / m.max(1) as f64),
                        ReservationKind::Tpm => tpm.map_or(0.0, |m| value / m.max(1) as f64),
                    },
                };
                (p.as_str(), v.max(0.0))
            })
            .collect();
        let sum: f64 = w.values().sum();
        if sum > 1.0 {
            for v in w.values_mut() {
                *v /= sum;
            }
        }
        w
    }

    /// The saturation and priority descriptors of a request for `model` (none when its
    /// deployments declare no capacity). `base` is how many descriptors precede them.
    pub fn descriptors(
        &self,
        principal: &Principal,
        model: &str,
        group: &[Arc<Deployment>],
        base: usize,
    ) -> (Vec<Descriptor>, Option<Arc<Pool>>) {
        let sum = |f: fn(&Deployment) -> Option<u64>| {
            group
                .iter()
                .filter_map(|d| f(d))
                .reduce(|a, b| a.saturating_add(b))
        };
        let (rpm, tpm) = (sum(|d| d.rpm), sum(|d| d.tpm));
        if rpm.is_none() && tpm.is_none() {
            return (Vec::new(), None);
        }
        let asked = priority_of(principal);
        let weights = self.weights(rpm, tpm);
        let (pool, weight) = match asked
            .as_deref()
            .and_then(|p| weights.get(p).map(|w| (p, *w)))
        {
            Some((p, w)) => (p.to_string(), w),
            None => ("default_pool".to_string(), self.settings.default_priority),
        };
        let info = Arc::new(Pool {
            model: model.to_string(),
            priority: asked.unwrap_or_else(|| "default".into()),
            model_rpm: rpm,
            model_tpm: tpm,
        });
        let share = |cap: Option<u64>| cap.map(|c| (c as f64 * weight).floor() as u64);
        let saturation = Descriptor {
            dynamic: Some(info.clone()),
            ..Descriptor::plain("model_saturation_check", model.to_string(), rpm, tpm, None)
        };
        let priority = Descriptor {
            gate: Some((self.settings.saturation_threshold, base)),
            dynamic: Some(info.clone()),
            ..Descriptor::plain(
                "priority_model",
                format!("{model}:{pool}"),
                share(rpm),
                share(tpm),
                None,
            )
        };
        (vec![saturation, priority], Some(info))
    }
}

/// `priority` from the team's metadata, else the key's.
fn priority_of(principal: &Principal) -> Option<String> {
    let c = principal.key()?;
    let from = |m: &Value| {
        m.get("priority")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    c.team
        .as_ref()
        .and_then(|t| from(&t.metadata))
        .or_else(|| from(&c.key.metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_normalise_and_convert() {
        let mut r = BTreeMap::new();
        r.insert("a".to_string(), Reservation::Share(0.6));
        r.insert("b".to_string(), Reservation::Share(0.8));
        let p = Priorities::from_settings(&[CALLBACK.into()], &r, &ReservationSettings::default())
            .unwrap();
        let w = p.weights(Some(100), None);
        assert!((w["a"] - 0.6 / 1.4).abs() < 1e-9);
        assert!((w["b"] - 0.8 / 1.4).abs() < 1e-9);
        let mut r = BTreeMap::new();
        r.insert(
            "x".to_string(),
            Reservation::Typed {
                kind: ReservationKind::Rpm,
                value: 25.0,
            },
        );
        let p = Priorities::from_settings(&[CALLBACK.into()], &r, &ReservationSettings::default())
            .unwrap();
        assert!((p.weights(Some(100), None)["x"] - 0.25).abs() < 1e-9);
        assert!(Priorities::from_settings(&[], &r, &ReservationSettings::default()).is_none());
    }
}
