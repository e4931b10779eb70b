//! The bottom layer: small helpers every other module may use and that use no other module of
//! the crate — the clock, hex, LiteLLM durations, query strings, error types of HTTP statuses,
//! which addresses are not public, the boxed error of bodies.

#[cfg(feature = "mimalloc")]
pub mod alloc;
pub mod clock;
pub mod duration;
pub mod hex;
pub mod json_text;
pub mod literal;
pub mod net;
pub mod query;
pub mod redis_conn;
pub mod redis_tls;
pub mod status;
pub mod tape;

/// Any error, sent between threads (body and stream errors).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A map on the request path or the spend writer's: foldhash (seeded per process) instead of
/// std's SipHash, which cost a governed request several thousand instructions over its
/// ledger, roll-up and limiter maps.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A set, as [`FastMap`].
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
