mod cli;
mod errors;
mod proxy;
mod sdk;
mod server;
mod streaming;
