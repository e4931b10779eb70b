//! Issue 19's regression tests: each item of the hardening issue, tried the way an attacker or a
//! new user found it.

mod access;
mod passthrough_access;
mod redis_recovery;
mod secrets;
mod shutdown;
mod slow_bodies;
mod startup;
mod streams;
mod validation;
