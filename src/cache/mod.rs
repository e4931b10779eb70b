//! The response cache (issue 9, in progress): so far the cache key (`key.rs`). Not wired into
//! the request path yet.

pub mod key;
