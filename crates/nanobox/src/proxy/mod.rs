//! The filtering HTTP proxy behind `allow_network`: platform-neutral, event-driven on a
//! single-threaded tokio runtime.
//!
//! The proxy answers `CONNECT host:port` (tunnels, e.g. HTTPS; TLS is never terminated) and
//! absolute-form plain-HTTP requests (`GET http://host/path`, forwarded in origin-form). For each
//! request, in this order:
//!
//! 1. the head is read within bounds ([`Limits`]) and parsed strictly, else `400`;
//! 2. the host and port must match the [`AllowList`], else `403` naming the host and listing the
//!    patterns (the name is not resolved);
//! 3. the request is logged (see *The log* below); if the log cannot take one more allowed
//!    destination, the request is refused (`503`): nothing goes through unlogged;
//! 4. the name is resolved once through the [`Resolver`], within [`Limits::resolve_timeout`];
//!    every answer must pass the address rules, checked at this moment: it must be a public
//!    address ([`classify`]: the IANA special-purpose blocks that are not globally reachable,
//!    multicast, and IPv6 outside 2000::/3 are refused; IPv6 forms that embed an IPv4 address are
//!    judged by that address) and not an address of this host ([`is_host_address`]: a packet to
//!    it would be delivered locally in the caller's network namespace). An answer inside
//!    [`ProxyConfig::allow_addresses`], or pinned by the resolver for this name
//!    ([`Resolver::pinned`], the override [`OverrideResolver`]), is exempt. Otherwise `403`, whose
//!    body names the rule but never what the name resolved to (the log has the address). An IP
//!    literal is checked the same way (it is never pinned);
//! 5. the proxy connects to one of exactly the checked addresses (`502` if none answers), or, with
//!    an [`Upstream`] proxy, asks the upstream for `CONNECT ip:port` / `GET http://ip:port/path` with
//!    the checked address, so the upstream cannot resolve the name to anything else. The upstream's
//!    own address is the caller's choice and is not under the address rules; in chain mode the name
//!    must still resolve locally (fail-closed: a name the local resolver cannot resolve is refused
//!    with `502` rather than passed to the upstream by name);
//! 6. a tunnel carries TLS or HTTP. When the client's first bytes are a TLS record, the tunnel
//!    relays both ways and half-closes propagate. Otherwise they must be one plain-HTTP request
//!    whose `Host` (and URL, in absolute-form) names the tunnel's host and port; it is forwarded
//!    like a plain-HTTP request below, else `403` (a mismatched `Host`, logged as its own refused
//!    request) or `400`. So a tunnel to an allowed host never carries a request for another
//!    virtual host of the same server. A plain-HTTP request is sent with `Connection: close`,
//!    exactly its body (by `Content-Length` or `chunked` framing) is forwarded, the response is
//!    relayed until the origin closes, and then the client connection is closed: every request is
//!    its own connection, so a second request on a kept-alive connection is never forwarded
//!    unchecked.
//!
//! # The log
//!
//! Every request that got past the parser is in the log. Repeats aggregate: requests with the
//! same host, port, outcome, pattern, address and reason are one [`NetworkEvent`] with a
//! [`count`](NetworkEvent::count) and summed bytes. At most [`Limits::max_events`] distinct refused
//! entries are kept; later distinct refusals are counted in [`NetworkLog::omitted`]. Allowed
//! entries are never dropped: up to [`Limits::max_events`] distinct allowed destinations, and past
//! that new destinations are refused (logged as refusals) instead of being let through unlogged.
//!
//! # Bounds
//!
//! One thread per proxy (one per sandbox), whatever the traffic: accepting, reading heads,
//! resolving, connecting and relaying are tasks on it; a lookup is its own stub resolver
//! ([`SystemResolver`]), not a blocking `getaddrinfo`. At most [`Limits::max_connections`]
//! connections are served at once (past it a client gets `503`), and at most
//! [`Limits::max_lookups`] lookups run at once. Descriptors: the runtime's 3 and the listener, 2
//! per connection, up to 4 per lookup in flight (UDP and TCP to two nameservers), and for a moment
//! the netlink socket of a host-address check; with the defaults at most 4 + 2 × 64 + 4 × 8 + 1 =
//! 165 (`tests/proxy_bounds.rs` measures the connections' part). Memory: each connection holds two relay buffers (64
//! KiB each, plus its share of the growth budget [`Limits::relay_memory`]) and at most one request
//! head of [`Limits::max_head_bytes`]. A relay buffer doubles (up to 4 MiB) each time a read fills
//! it, while the budget lasts: a bulk download moves in few, large reads and writes, an interactive
//! stream keeps 64 KiB.
//!
//! [`ProxyHandle::stop`] cancels every task, which closes every socket (lookups in flight
//! included: nothing of the proxy outlives it), ends the thread and joins it.

mod addr;
#[doc(hidden)]
pub mod fuzz;
mod head;
mod local;
mod pattern;
mod resolve;
mod server;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

pub use addr::{classify, AddressClass, Cidr};
pub use local::is_host_address;
pub use pattern::AllowList;
pub use resolve::{Lookup, OverrideResolver, Resolver, SystemResolver};
pub use server::{ProxyHandle, ProxyServer};
pub use upstream::Upstream;

/// Bounds on the proxy's work.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once; past it a new connection gets `503` (default 64).
    pub max_connections: usize,
    /// Name lookups in flight at once; later ones wait their turn (default 8).
    pub max_lookups: usize,
    /// Time to resolve a name (default 5 s; then `502`).
    pub resolve_timeout: Duration,
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
    /// Distinct refused entries kept in the log, and distinct allowed destinations served
    /// (default 10 000 each; see *The log* in the module documentation).
    pub max_events: usize,
    /// Bytes by which relay buffers may grow past their first 64 KiB, all connections together
    /// (default 64 MiB). A bulk transfer doubles its buffer up to 4 MiB while this lasts.
    pub relay_memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            max_lookups: 8,
            resolve_timeout: Duration::from_secs(5),
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
            resolver: Arc::new(SystemResolver::new()),
            upstream: None,
            limits: Limits::default(),
        }
    }
}

/// What went through the proxy: its log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkLog {
    /// The entries, in the order they were first completed (requests still in progress last).
    pub events: Vec<NetworkEvent>,
    /// Refused requests not listed in `events` because the log already held
    /// [`Limits::max_events`] distinct refused entries. Allowed requests are never omitted.
    pub omitted: u64,
}

/// One request through the proxy, or several alike (see [`count`](NetworkEvent::count)).
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
    /// How many requests this entry stands for: requests with the same host, port, outcome,
    /// pattern, address and reason are one entry, their bytes summed.
    pub count: u64,
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
            count: 1,
            bytes_up: 0,
            bytes_down: 0,
        }
    }
}

/// The proxy's configuration for a policy with a network allowlist (validated at `build()`); the
/// Linux and macOS backends both start it from this.
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
pub(crate) fn config_for(policy: &crate::policy::Policy) -> crate::Result<Option<ProxyConfig>> {
    use crate::error::Error;
    let crate::policy::Network::Allowlist(a) = &policy.network else {
        return Ok(None);
    };
    let invalid = |option: &'static str| move |reason| Error::InvalidOption { option, reason };
    let mut cfg =
        ProxyConfig::new(AllowList::parse(&a.patterns).map_err(invalid("allow_network"))?);
    for c in &a.addresses {
        cfg.allow_addresses
            .push(Cidr::parse(c).map_err(invalid("allow_address"))?);
    }
    let mut resolver = OverrideResolver::new(Arc::new(SystemResolver::new()));
    for (name, addr) in &a.hosts {
        resolver = resolver.map(name, *addr).map_err(invalid("map_host"))?;
    }
    cfg.resolver = Arc::new(resolver);
    cfg.upstream = a
        .upstream
        .as_deref()
        .map(Upstream::parse)
        .transpose()
        .map_err(invalid("upstream_proxy"))?;
    Ok(Some(cfg))
}
