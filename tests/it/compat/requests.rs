//! Drop-in compatibility: requests (see mod.rs).
