//! Issue 19: see mod.rs.
