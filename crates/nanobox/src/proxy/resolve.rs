//! Name resolution for the proxy: the [`Resolver`] trait, the system resolver (its own stub
//! resolver, so that a lookup can be cancelled and never outlives the proxy), and the test
//! override.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

use super::pattern::normalize_name;

/// A lookup in progress: the addresses of a name, in the order to try them.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Turns host names into addresses. Answers are always under the address rules, except the ones for
/// which [`pinned`](Resolver::pinned) is true.
///
/// The proxy polls [`resolve`](Resolver::resolve) on its own event loop, bounded by
/// [`Limits::resolve_timeout`](super::Limits::resolve_timeout), and drops it when the proxy stops:
/// an implementation must not block the thread (do blocking work elsewhere and await it).
pub trait Resolver: Send + Sync {
    /// The addresses of `host` (a normalized ASCII name), in the order to try them.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a>;

    /// Whether `addr`, answered by this resolver for `host`, was set explicitly by the caller and so
    /// is exempt from the address rules for connections to `host` (and only to `host`). Default:
    /// never.
    fn pinned(&self, _host: &str, _addr: IpAddr) -> bool {
        false
    }
}

/// The system's name service as a stub resolver: `/etc/hosts` first, then the nameservers, search
/// list and options of `/etc/resolv.conf` (read at each lookup), both A and AAAA records. Name
/// service switch modules (`/etc/nsswitch.conf`: mDNS, LDAP, `nss-resolve` without its stub
/// listener) are not consulted. Where `/etc/resolv.conf` is missing or names no nameserver, the
/// nameserver is 127.0.0.1, as in the C library.
///
/// Unlike `getaddrinfo`, a lookup is a future: the proxy bounds it in time and drops it (closing
/// its sockets) when the run ends, so no lookup outlives the run.
#[derive(Debug, Clone, Default)]
pub struct SystemResolver {
    nameservers: Option<Vec<SocketAddr>>,
}

impl SystemResolver {
    /// The system's configuration (see the type's documentation).
    pub fn new() -> Self {
        SystemResolver::default()
    }

    /// Only these nameservers (UDP, then TCP on truncation), no hosts file, no search list.
    pub fn with_nameservers(nameservers: impl IntoIterator<Item = SocketAddr>) -> Self {
        SystemResolver {
            nameservers: Some(nameservers.into_iter().collect()),
        }
    }

    fn resolver(&self) -> TokioResolver {
        let provider = TokioConnectionProvider::default();
        let mut builder = match &self.nameservers {
            Some(servers) => {
                let mut group = NameServerConfigGroup::new();
                for s in servers {
                    group.merge(NameServerConfigGroup::from_ips_clear(
                        &[s.ip()],
                        s.port(),
                        true,
                    ));
                }
                let mut b = TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], group),
                    provider,
                );
                b.options_mut().use_hosts_file = ResolveHosts::Never;
                b
            }
            None => match TokioResolver::builder(provider.clone()) {
                Ok(mut b) => {
                    b.options_mut().use_hosts_file = ResolveHosts::Always;
                    b
                }
                Err(_) => {
                    let group = NameServerConfigGroup::from_ips_clear(
                        &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
                        53,
                        true,
                    );
                    let mut b = TokioResolver::builder_with_config(
                        ResolverConfig::from_parts(None, vec![], group),
                        provider,
                    );
                    b.options_mut().use_hosts_file = ResolveHosts::Always;
                    b
                }
            },
        };
        let o: &mut ResolverOpts = builder.options_mut();
        o.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        o.timeout = Duration::from_secs(2);
        o.attempts = 2;
        // One lookup per request: the proxy checks and connects to exactly what it was told.
        o.cache_size = 0;
        builder.build()
    }
}

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> Lookup<'a> {
        Box::pin(async move {
            // A fully qualified name: the search list applies only to names the program wrote
            // without a dot, as in the C library.
            let lookup = self
                .resolver()
                .lookup_ip(host)
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            Ok(lookup.iter().collect())
        })
    }
}

/// The test override: names mapped to fixed addresses, other names passed to a fallback resolver.
///
/// The rule: a mapped name resolves to exactly its mapped addresses (the fallback is not asked), and
/// those addresses are exempt from the address rules for connections to that name only. The same
/// address reached through another name, through the fallback, or as an IP literal is still under the
/// address rules. The name itself must still be allowed by the allowlist.
#[derive(Clone)]
pub struct OverrideResolver {
    map: HashMap<String, Vec<IpAddr>>,
    fallback: Arc<dyn Resolver>,
}

impl fmt::Debug for OverrideResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OverrideResolver")
            .field("map", &self.map)
            .finish_non_exhaustive()
    }
}

impl Default for OverrideResolver {
    fn default() -> Self {
        OverrideResolver::new(Arc::new(SystemResolver::new()))
    }
}

impl OverrideResolver {
    /// An empty override in front of `fallback`.
    pub fn new(fallback: Arc<dyn Resolver>) -> Self {
        OverrideResolver {
            map: HashMap::new(),
            fallback,
        }
    }

    /// Maps `name` (normalized like a pattern) to `addr`; repeated calls add addresses.
    pub fn map(mut self, name: &str, addr: IpAddr) -> Result<Self, String> {
        let name = normalize_name(name)?;
        self.map.entry(name).or_default().push(addr);
        Ok(self)
    }
}

impl Resolver for OverrideResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        match self.map.get(host) {
            Some(a) => {
                let a = a.clone();
                Box::pin(async move { Ok(a) })
            }
            None => self.fallback.resolve(host, port),
        }
    }

    fn pinned(&self, host: &str, addr: IpAddr) -> bool {
        self.map.get(host).is_some_and(|a| a.contains(&addr)) || self.fallback.pinned(host, addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn override_pins_only_its_own_answers() {
        struct Dns;
        impl Resolver for Dns {
            fn resolve<'a>(&'a self, _: &'a str, _: u16) -> Lookup<'a> {
                Box::pin(async { Ok(vec!["127.0.0.1".parse().unwrap()]) })
            }
        }
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let r = OverrideResolver::new(Arc::new(Dns))
            .map("Origin.Test.", lo)
            .unwrap();
        assert_eq!(block_on(r.resolve("origin.test", 1)).unwrap(), vec![lo]);
        assert!(r.pinned("origin.test", lo));
        assert!(!r.pinned("origin.test", "127.0.0.2".parse().unwrap()));
        assert_eq!(block_on(r.resolve("other.test", 1)).unwrap(), vec![lo]);
        assert!(!r.pinned("other.test", lo));
        assert!(OverrideResolver::default().map("127.1", lo).is_err());
    }

    /// A nameserver on loopback that answers every A query with 192.0.2.1 + the query's last
    /// label length (so the test can tell that the answer came from it), AAAA with nothing.
    #[test]
    fn the_stub_resolver_asks_the_given_nameserver_for_a_and_aaaa() {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut types = Vec::new();
            let mut buf = [0u8; 512];
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            while types.len() < 2 {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    break;
                };
                let q = &buf[..n];
                // header (12) + qname + qtype (2) + qclass (2)
                let mut i = 12;
                while q[i] != 0 {
                    i += 1 + q[i] as usize;
                }
                let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
                types.push(qtype);
                let qend = i + 5;
                let mut r = q[..qend].to_vec();
                r[2] = 0x81; // response, recursion desired
                r[3] = 0x80; // recursion available, no error
                r[8..12].fill(0); // no authority or additional records (an EDNS OPT is dropped)
                if qtype == 1 {
                    r[7] = 1; // one answer
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
                }
                sock.send_to(&r, from).unwrap();
            }
            types
        });
        let r = SystemResolver::with_nameservers([addr]);
        let got = block_on(r.resolve("origin.test", 80)).unwrap();
        assert_eq!(got, vec!["192.0.2.7".parse::<IpAddr>().unwrap()]);
        let mut types = server.join().unwrap();
        types.sort();
        assert_eq!(types, vec![1, 28], "one A and one AAAA query");
    }
}
