//! The one integration test binary: the real server over loopback HTTP against a mock upstream.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod it;
