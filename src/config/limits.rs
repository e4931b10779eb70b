//! Rate-limit settings value types: what counts against TPM, priority reservations.

use serde::Deserialize;

/// Which usage counts against TPM (`general_settings.token_rate_limit_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenCount {
    Input,
    Output,
    #[default]
    Total,
}

/// A priority's share: a fraction, or `{type: percent|rpm|tpm, value}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Reservation {
    Share(f64),
    Typed {
        #[serde(rename = "type")]
        kind: ReservationKind,
        value: f64,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReservationKind {
    Percent,
    Rpm,
    Tpm,
}

/// `tianji_settings.priority_reservation_settings`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReservationSettings {
    pub default_priority: f64,
    pub saturation_threshold: f64,
    /// Accepted for compatibility: saturation is read inside the limiter call, never cached.
    pub saturation_check_cache_ttl: f64,
}

impl Default for ReservationSettings {
    fn default() -> Self {
        Self {
            default_priority: 0.25,
            saturation_threshold: 0.5,
            saturation_check_cache_ttl: 60.0,
        }
    }
}
