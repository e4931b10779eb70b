//! Drop-in compatibility: admin (see mod.rs).
