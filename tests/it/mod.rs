mod cli;
mod errors;
mod providers;
mod proxy;
mod sdk;
mod server;
mod store;
mod streaming;
