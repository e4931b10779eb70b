//! A free TCP port on loopback, for a server a test or bench starts (the port is free when
//! asked; the server binds it right after). Shared by `tests/common` and the benches (`#[path]`).

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}
