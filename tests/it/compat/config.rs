//! Drop-in compatibility: config (see mod.rs).
