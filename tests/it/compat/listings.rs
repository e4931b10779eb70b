//! Drop-in compatibility: listings (see mod.rs).
