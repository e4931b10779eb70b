//! LiteLLM's per-request retry, timeout and testing controls, read from the body by the parser:
//! `num_retries`, `timeout`, `fastest_response` and the testing ones (`mock_testing_fallbacks`,
//! `mock_testing_context_fallbacks`, `mock_testing_content_policy_fallbacks`,
//! `mock_testing_rate_limit_error`, `mock_timeout`). The gateway acts on them (attempts.rs,
//! several.rs); the upstream body leaves them out (rewrite.rs). The testing ones are refused
//! unless `general_settings.dangerously_allow_mock_testing_request_params` allows them, as in
//! LiteLLM.

use std::time::Duration;

use super::parse::RequestError;

/// The members, in the order [`CallControls::set`] takes them.
pub const NAMES: [&str; 8] = [
    "num_retries",
    "timeout",
    "fastest_response",
    "mock_testing_fallbacks",
    "mock_testing_context_fallbacks",
    "mock_testing_content_policy_fallbacks",
    "mock_testing_rate_limit_error",
    "mock_timeout",
];

/// The first testing member of [`NAMES`]; the rest of the list are testing members too.
const FIRST_TESTING: usize = 3;

/// The config key that allows the testing members.
pub const ALLOW_TESTING: &str = "dangerously_allow_mock_testing_request_params";

/// A member's value, as far as the controls read it.
#[derive(Debug, Clone, Copy)]
pub enum Scalar {
    Null,
    Bool(bool),
    /// A non-negative integer.
    Count(u64),
    Number(f64),
    Other,
}

/// The failure a testing member makes up for the first attempt, instead of calling the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MockFailure {
    /// `mock_testing_fallbacks`: a 500, straight to the fallbacks.
    Fallbacks,
    /// `mock_testing_context_fallbacks`: a context-window error, to the context-window fallbacks.
    ContextWindow,
    /// `mock_testing_content_policy_fallbacks`: a content-policy error, to its fallbacks.
    ContentPolicy,
    /// `mock_testing_rate_limit_error`: a 429, retried as any other.
    RateLimit,
}

/// The controls a request body sets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallControls {
    pub num_retries: Option<u32>,
    pub timeout: Option<Duration>,
    pub fastest_response: bool,
    pub mock_failure: Option<MockFailure>,
    /// Every attempt in the model group asked for waits for its timeout and fails with it.
    pub mock_timeout: bool,
    /// The members present, one bit each in [`NAMES`] order.
    present: u16,
}

fn invalid(i: usize, message: &'static str) -> RequestError {
    RequestError::Invalid {
        field: NAMES[i],
        message,
    }
}

impl CallControls {
    /// Read member `NAMES[i]` (its value `v`).
    pub fn set(&mut self, i: usize, v: Scalar) -> Result<(), RequestError> {
        self.present |= 1 << i;
        let flag = |v: Scalar| match v {
            Scalar::Null => Ok(false),
            Scalar::Bool(b) => Ok(b),
            _ => Err(invalid(i, "must be a boolean")),
        };
        match (i, v) {
            (0 | 1, Scalar::Null) => {}
            (0, Scalar::Count(n)) => {
                let n = u32::try_from(n).map_err(|_| invalid(i, "is too large"))?;
                self.num_retries = Some(n);
            }
            (0, _) => return Err(invalid(i, "must be an integer >= 0")),
            (1, Scalar::Count(n)) => self.timeout = Some(seconds(n as f64, i)?),
            (1, Scalar::Number(s)) => self.timeout = Some(seconds(s, i)?),
            (1, _) => return Err(invalid(i, "must be a number of seconds > 0")),
            (2, v) => self.fastest_response = flag(v)?,
            (7, v) => self.mock_timeout = flag(v)?,
            (_, v) => {
                if flag(v)? && self.mock_failure.is_none() {
                    self.mock_failure = Some(match i {
                        3 => MockFailure::Fallbacks,
                        4 => MockFailure::ContextWindow,
                        5 => MockFailure::ContentPolicy,
                        _ => MockFailure::RateLimit,
                    });
                }
            }
        }
        Ok(())
    }

    /// Whether the body has any of the members (the upstream body then leaves them out).
    pub fn any(&self) -> bool {
        self.present != 0
    }

    /// The members the body has.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        (0..NAMES.len())
            .filter(|i| self.present & (1 << i) != 0)
            .map(|i| NAMES[i])
    }

    /// Refuse the testing members (LiteLLM refuses them, whatever their value, unless the
    /// admin allowed them in the config).
    pub fn check_testing(&self, allowed: bool) -> Result<(), RequestError> {
        let testing: Vec<&str> = self.names().filter(|n| is_testing(n)).collect();
        if allowed || testing.is_empty() {
            return Ok(());
        }
        Err(RequestError::BadValue(format!(
            "Mock testing request params are disabled on this proxy: {}. An admin can enable them by setting `general_settings.{ALLOW_TESTING}: true` in config.yaml.",
            testing.join(", ")
        )))
    }

    /// Whether a failed attempt may be followed by another because of these controls.
    pub fn may_try_again(&self) -> bool {
        self.num_retries.is_some_and(|n| n > 0) || self.mock_failure.is_some()
    }
}

fn is_testing(name: &str) -> bool {
    NAMES[FIRST_TESTING..].contains(&name)
}

fn seconds(s: f64, i: usize) -> Result<Duration, RequestError> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or(invalid(i, "must be a number of seconds > 0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_member() {
        let mut c = CallControls::default();
        assert!(!c.any());
        c.set(0, Scalar::Count(2)).unwrap();
        c.set(1, Scalar::Number(0.5)).unwrap();
        c.set(2, Scalar::Bool(true)).unwrap();
        c.set(6, Scalar::Bool(true)).unwrap();
        c.set(3, Scalar::Bool(true)).unwrap();
        assert_eq!(c.num_retries, Some(2));
        assert_eq!(c.timeout, Some(Duration::from_millis(500)));
        assert!(c.fastest_response);
        assert_eq!(c.mock_failure, Some(MockFailure::RateLimit));
        assert!(c.may_try_again());
        assert_eq!(
            c.names().collect::<Vec<_>>(),
            [
                "num_retries",
                "timeout",
                "fastest_response",
                "mock_testing_fallbacks",
                "mock_testing_rate_limit_error"
            ]
        );
        assert!(c.check_testing(true).is_ok());
        let e = c.check_testing(false).unwrap_err().to_string();
        assert!(
            e.contains("mock_testing_fallbacks, mock_testing_rate_limit_error")
                && e.contains(ALLOW_TESTING),
            "{e}"
        );
    }

    #[test]
    fn refuses_bad_values() {
        let mut c = CallControls::default();
        for (i, v) in [
            (0, Scalar::Number(1.5)),
            (0, Scalar::Count(u64::MAX)),
            (1, Scalar::Number(0.0)),
            (1, Scalar::Number(-1.0)),
            (1, Scalar::Other),
            (2, Scalar::Count(1)),
            (7, Scalar::Other),
        ] {
            let e = c.set(i, v).unwrap_err();
            assert_eq!(e.param(), Some(NAMES[i]));
        }
        let mut c = CallControls::default();
        c.set(7, Scalar::Bool(false)).unwrap();
        c.set(0, Scalar::Null).unwrap();
        assert!(c.any() && !c.mock_timeout && c.num_retries.is_none());
        // present, even false: refused without the opt-in
        assert!(c.check_testing(false).is_err());
        let mut c = CallControls::default();
        c.set(0, Scalar::Count(1)).unwrap();
        assert!(c.check_testing(false).is_ok());
    }
}
