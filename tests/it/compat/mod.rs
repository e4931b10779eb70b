//! Issue 21's drop-in compatibility tests: what a LiteLLM user's config, scripts and checks
//! expect, one test per behaviour, written from LiteLLM's documented behaviour.

mod admin;
mod config;
mod listings;
mod requests;
