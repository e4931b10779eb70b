//! The bottom layer: small helpers every other module may use and that use no other module of
//! the crate — the clock, hex, LiteLLM durations, query strings.

pub mod clock;
pub mod duration;
pub mod hex;
pub mod query;
