//! The filtering HTTP proxy behind `allow_network`: platform-neutral, std threads plus `mio` for
//! the accept loop and for interruptible connects.
//!
//! The proxy answers `CONNECT host:port` (tunnels, e.g. HTTPS; TLS is never terminated) and
//! absolute-form plain-HTTP requests (`GET http://host/path`, forwarded in origin-form). For each
//! request, in this order:
//!
//! 1. the head is read within bounds ([`Limits`]) and parsed strictly, else `400`;
//! 2. the host and port must match the [`AllowList`], else `403` naming the host and listing the
//!    patterns (the name is not resolved);
//! 3. the name is resolved once through the [`Resolver`]; if any answer is loopback, private,
//!    link-local, CGNAT, unique-local, multicast, unspecified, broadcast or reserved (see
//!    [`AddressClass`]; IPv6 forms that embed an IPv4 address are judged by that address) and is
//!    neither inside [`ProxyConfig::allow_addresses`] nor pinned by the resolver for this name
//!    ([`Resolver::pinned`], the test override [`OverrideResolver`]), the request gets `403` naming
//!    the address class. An IP literal is checked the same way (it is never pinned);
//! 4. the proxy connects to one of exactly the checked addresses (`502` if none answers), or, with
//!    an [`Upstream`] proxy, asks the upstream for `CONNECT ip:port` / `GET http://ip:port/path` with
//!    the checked address, so the upstream cannot resolve the name to anything else. The upstream's
//!    own address is the caller's choice and is not under the address rules; in chain mode the name
//!    must still resolve locally (fail-closed: a name the local resolver cannot resolve is refused
//!    with `502` rather than passed to the upstream by name);
//! 5. a tunnel relays both ways, half-closes propagate; a plain-HTTP request is sent with
//!    `Connection: close`, exactly its body (by `Content-Length` or `chunked` framing) is forwarded,
//!    the response is relayed until the origin closes, and then the client connection is closed:
//!    every request is its own connection, so a second request on a kept-alive client connection is
//!    never forwarded unchecked.
//!
//! Every request that got past the parser is recorded as a [`NetworkEvent`].
//!
//! # Threads
//!
//! One accept thread (blocked in `mio::Poll` on the listener and a waker) and one thread per
//! connection, plus a second one while bytes flow from the origin to the client; relaying is plain
//! blocking `read`/`write` with socket timeouts. Thread-per-connection rather than an event loop
//! because name resolution (`getaddrinfo`) blocks anyway, and half-close, idle timeouts and
//! per-request bounds stay simple straight-line code. A relay buffer starts at 64 KiB and doubles
//! (up to 4 MiB) each time a read fills it, while the server-wide budget
//! [`Limits::relay_memory`] lasts: a bulk download moves in few, large reads and writes, an
//! interactive stream keeps 64 KiB. (Measured in `benches/proxy.rs`: this copy costs less CPU
//! per byte than `splice(2)` through a pipe.) Connections are capped ([`Limits::max_connections`];
//! past it a client gets `503`), threads have 256 KiB stacks, and each connection holds two relay
//! buffers (64 KiB each, plus its share of the growth budget) and at most one request
//! head of [`Limits::max_head_bytes`], so memory is bounded by the cap and the budget.
//!
//! [`ProxyHandle::stop`] marks the proxy stopping, shuts down every registered socket (which wakes
//! every blocked read and write), wakes the accept thread, and joins it; the accept thread joins
//! every connection thread, each of which joins its helper. A connect in progress notices the stop
//! within 100 ms. A system DNS lookup in progress cannot be interrupted: `stop` waits for it (the
//! system resolver's own timeout bounds it).

mod addr;
#[doc(hidden)]
pub mod fuzz;
mod head;
mod local;
mod pattern;
mod server;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

pub use addr::{classify, AddressClass, Cidr, OverrideResolver, Resolver, SystemResolver};
pub use local::is_host_address;
pub use pattern::AllowList;
pub use server::{ProxyHandle, ProxyServer};
pub use upstream::Upstream;

/// Bounds on the proxy's work.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; past it a new connection gets `503` (default 512).
    pub max_connections: usize,
    /// Largest request head, request line included (default 16 KiB).
    pub max_head_bytes: usize,
    /// Most header lines (default 100).
    pub max_header_lines: usize,
    /// Time to receive a whole request head (default 30 s; then `408`).
    pub head_timeout: Duration,
    /// Time to connect to an origin or upstream proxy address (default 10 s).
    pub connect_timeout: Duration,
    /// A connection on which nothing moved either way for this long is closed (default 5 min).
    pub idle_timeout: Duration,
    /// Events kept; later ones are not recorded (default 10 000).
    pub max_events: usize,
    /// Bytes by which relay buffers may grow past their first 64 KiB, all connections together
    /// (default 64 MiB). A bulk transfer doubles its buffer up to 4 MiB while this lasts.
    pub relay_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            max_head_bytes: head::MAX_HEAD_BYTES,
            max_header_lines: head::MAX_HEADER_LINES,
            head_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_events: 10_000,
            relay_memory: 64 * 1024 * 1024,
        }
    }
}

/// What the proxy allows and how it reaches the outside.
#[derive(Clone)]
pub struct ProxyConfig {
    /// Host patterns.
    pub allow: AllowList,
    /// Addresses exempt from the address rules (single addresses or CIDR blocks).
    pub allow_addresses: Vec<Cidr>,
    /// Name resolution (default: [`SystemResolver`]).
    pub resolver: Arc<dyn Resolver>,
    /// An upstream HTTP proxy to chain through.
    pub upstream: Option<Upstream>,
    /// Bounds.
    pub limits: Limits,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("allow", &self.allow)
            .field("allow_addresses", &self.allow_addresses)
            .field("upstream", &self.upstream)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ProxyConfig {
    /// `allow` with no address exemptions, the system resolver, no upstream, default limits.
    pub fn new(allow: AllowList) -> Self {
        ProxyConfig {
            allow,
            allow_addresses: Vec::new(),
            resolver: Arc::new(SystemResolver),
            upstream: None,
            limits: Limits::default(),
        }
    }
}

/// One request through the proxy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetworkEvent {
    /// The requested host (normalized: punycode, lowercase; IPv6 in brackets).
    pub host: String,
    /// The requested port.
    pub port: u16,
    /// Whether the allowlist and the address rules let it through (a later connect failure
    /// leaves this true and sets `reason`).
    pub allowed: bool,
    /// The pattern that matched, if any.
    pub pattern: Option<String>,
    /// The checked address connected to (`ip:port`), once connected.
    pub address: Option<String>,
    /// Why it was refused or failed: "not in the allowlist", "loopback address 127.0.0.1",
    /// "connect failed: ...", ...
    pub reason: Option<String>,
    /// Bytes relayed from the client (for plain HTTP, the forwarded head and body).
    pub bytes_up: u64,
    /// Bytes relayed to the client from the origin.
    pub bytes_down: u64,
}

impl NetworkEvent {
    fn new(
        host: &str,
        port: u16,
        allowed: bool,
        pattern: Option<String>,
        reason: Option<String>,
    ) -> Self {
        NetworkEvent {
            host: host.to_string(),
            port,
            allowed,
            pattern,
            address: None,
            reason,
            bytes_up: 0,
            bytes_down: 0,
        }
    }
}
