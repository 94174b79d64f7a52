//! Whether an address is this host's own, for the proxy to check when it connects: a name that
//! resolves to the host's public address (the one on `eth0`, say) reaches every service the host
//! binds to `0.0.0.0`, and no address class tells that address from any other public one.

use std::io;
use std::net::IpAddr;

use super::addr::canonical;

/// Whether a packet to `addr`, sent from the calling thread's network namespace, would be delivered
/// to this host itself rather than routed out.
///
/// On Linux the kernel is asked, with one route lookup (`RTM_GETROUTE` on a `NETLINK_ROUTE`
/// socket; no packet is sent), what it would do with a packet to `addr`. Local, broadcast, anycast
/// and multicast answers are host addresses: that covers every address of every interface (those
/// of interfaces that are down excepted: the kernel has no local route for them), the rest of a
/// block assigned to the loopback interface (all of `127.0.0.0/8`), ranges routed to the host
/// with `ip route add local ...` ("AnyIP"), and broadcast addresses. A unicast route, or no route
/// at all (`ENETUNREACH`, `EHOSTUNREACH`, or no IPv6 in the kernel for an IPv6 address: a
/// connect would fail by itself), means not a host address. An IPv4-mapped IPv6 address is looked up as its IPv4 address.
///
/// Linux keeps the network namespace per thread: the answer is for the namespace of the thread
/// that calls, which should be the one that then connects.
///
/// # Errors
///
/// Any other failure: the socket cannot be opened, the kernel does not answer within 2 s, refuses
/// the lookup (`EINVAL` for a blackhole route, `EACCES` for a prohibit route, where a connect would
/// fail as well), or answers something that is not a route. The caller should then refuse the
/// address. On macOS the interface address list (`getifaddrs`) stands in for the route lookup;
/// on other targets: always [`io::ErrorKind::Unsupported`].
pub fn is_host_address(addr: IpAddr) -> io::Result<bool> {
    imp::is_host_address(canonical(addr))
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;
    use std::net::IpAddr;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use netlink_packet_core::{
        ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLMSG_ERROR,
        NLM_F_REQUEST,
    };
    use netlink_packet_route::route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
    };
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    use netlink_sys::protocols::NETLINK_ROUTE;
    use netlink_sys::{Socket, SocketAddr};
    use rustix::net::sockopt::{set_socket_timeout, Timeout};

    /// How long the kernel may take to answer (it answers at once; this only bounds a stuck socket).
    const TIMEOUT: Duration = Duration::from_secs(2);

    /// Sequence numbers for the requests, so that an answer is known to be the one to this request.
    static SEQUENCE: AtomicU32 = AtomicU32::new(1);

    pub(super) fn is_host_address(addr: IpAddr) -> io::Result<bool> {
        Ok(match route_type(addr)? {
            None => false,
            Some(kind) => matches!(
                kind,
                RouteType::Local | RouteType::Broadcast | RouteType::Anycast | RouteType::Multicast
            ),
        })
    }

    fn failed(what: &str, e: impl std::fmt::Display) -> io::Error {
        io::Error::other(format!("route lookup: {what}: {e}"))
    }

    /// The type of the route the kernel would use for a packet to `addr`, or `None` when it has no
    /// route there.
    fn route_type(addr: IpAddr) -> io::Result<Option<RouteType>> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        // Connected to the kernel (port 0), the socket takes datagrams from the kernel only.
        socket.connect(&SocketAddr::new(0, 0))?;
        set_socket_timeout(&socket, Timeout::Recv, Some(TIMEOUT))?;
        set_socket_timeout(&socket, Timeout::Send, Some(TIMEOUT))?;

        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let mut route = RouteMessage::default();
        let (family, prefix) = match addr {
            IpAddr::V4(_) => (AddressFamily::Inet, 32),
            IpAddr::V6(_) => (AddressFamily::Inet6, 128),
        };
        route.header.address_family = family;
        route.header.destination_prefix_length = prefix;
        route
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(addr)));
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = seq;
        let mut request = NetlinkMessage::new(
            header,
            NetlinkPayload::from(RouteNetlinkMessage::GetRoute(route)),
        );
        request.finalize();
        let mut buf = vec![0; request.buffer_len()];
        request.serialize(&mut buf);
        let sent = socket.send(&buf, 0)?;
        if sent != buf.len() {
            return Err(failed(
                "request",
                format!("{sent} of {} bytes sent", buf.len()),
            ));
        }

        let mut buf = Vec::with_capacity(16 * 1024);
        loop {
            buf.clear();
            let (len, from) = match socket.recv_from(&mut buf, libc::MSG_TRUNC) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("route lookup: no answer from the kernel within {TIMEOUT:?}"),
                    ))
                }
                Err(e) => return Err(e),
            };
            if len > buf.len() {
                return Err(failed("answer", format!("{len} bytes, truncated")));
            }
            if from.port_number() != 0 {
                continue; // not from the kernel
            }
            match answer_to(seq, family, &buf)? {
                Answer::NotThisRequest => continue,
                Answer::NoRoute => return Ok(None),
                Answer::Route(kind) => return Ok(Some(kind)),
            }
        }
    }

    enum Answer {
        NotThisRequest,
        NoRoute,
        Route(RouteType),
    }

    /// What one datagram says about request `seq`. Only the fixed headers are parsed (netlink,
    /// then `rtmsg` or `nlmsgerr`): the route's attributes are not needed.
    fn answer_to(seq: u32, addr_family: AddressFamily, mut datagram: &[u8]) -> io::Result<Answer> {
        const RTM_NEWROUTE: u16 = libc::RTM_NEWROUTE;
        while !datagram.is_empty() {
            let msg = NetlinkBuffer::new_checked(datagram).map_err(|e| failed("answer", e))?;
            if msg.sequence_number() == seq {
                return match msg.message_type() {
                    RTM_NEWROUTE => RouteHeader::parse(msg.payload())
                        .map(|h| Answer::Route(h.kind))
                        .map_err(|e| failed("answer", e)),
                    NLMSG_ERROR => {
                        let e = ErrorBuffer::new_checked(msg.payload())
                            .map_err(|e| failed("error answer", e))?;
                        match e.code().map(|c| -c.get()) {
                            Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => Ok(Answer::NoRoute),
                            // No IPv6 in this kernel (ipv6.disable=1): no address of that
                            // family can be this host's, and a connect fails by itself.
                            Some(libc::EAFNOSUPPORT | libc::EOPNOTSUPP)
                                if matches!(addr_family, AddressFamily::Inet6) =>
                            {
                                Ok(Answer::NoRoute)
                            }
                            Some(errno) => {
                                let e = io::Error::from_raw_os_error(errno);
                                Err(io::Error::new(e.kind(), format!("route lookup: {e}")))
                            }
                            None => Err(failed("answer", "an acknowledgment, not a route")),
                        }
                    }
                    other => Err(failed("answer", format!("message type {other}"))),
                };
            }
            // Messages are padded to 4 bytes; new_checked made sure the length fits.
            let next = (msg.length() as usize + 3) & !3;
            datagram = datagram.get(next..).unwrap_or_default();
        }
        Ok(Answer::NotThisRequest)
    }
}

/// macOS: the interface address list (`getifaddrs`), and the blocks a host delivers to itself.
/// The proxy connects by TCP only, so the broadcast and multicast addresses the Linux lookup also
/// counts cannot be reached this way anyway (and [`super::addr::classify`] refuses multicast).
#[cfg(target_os = "macos")]
mod imp {
    use std::io;
    use std::net::IpAddr;

    pub(super) fn is_host_address(addr: IpAddr) -> io::Result<bool> {
        Ok(super::among(addr, &super::ifaddrs::addresses()?))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod imp {
    use std::io;
    use std::net::IpAddr;

    pub(super) fn is_host_address(_addr: IpAddr) -> io::Result<bool> {
        // Windows would need GetAdaptersAddresses, which none of this crate's dependencies
        // there offers.
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "telling this host's own addresses from others is implemented on Linux and macOS only",
        ))
    }
}

/// Whether `addr` (canonical: an IPv4-mapped address as its IPv4 address) is one of `own` (the
/// interfaces' addresses), the unspecified address (a connect to it reaches this host), or in a
/// loopback block.
#[cfg_attr(
    not(any(target_os = "macos", all(test, target_os = "linux"))),
    allow(dead_code)
)]
fn among(addr: IpAddr, own: &[IpAddr]) -> bool {
    addr.is_unspecified() || addr.is_loopback() || own.contains(&addr)
}

/// The addresses of every interface, up or not (more host addresses is the safe side).
#[cfg(any(target_os = "macos", all(test, target_os = "linux")))]
mod ifaddrs {
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    pub(super) fn addresses() -> io::Result<Vec<IpAddr>> {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs stores the head of a list it allocates in `list`; freed below.
        if unsafe { libc::getifaddrs(&mut list) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out = Vec::new();
        let mut node = list;
        while !node.is_null() {
            // SAFETY: `node` is a node of the list getifaddrs returned, which is not freed yet.
            let ifa = unsafe { &*node };
            node = ifa.ifa_next;
            if ifa.ifa_addr.is_null() {
                continue;
            }
            // SAFETY: ifa_addr is non-null and points to a sockaddr owned by the list.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            let ip = if family == libc::AF_INET {
                // SAFETY: a sockaddr of family AF_INET is a sockaddr_in.
                let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
            } else if family == libc::AF_INET6 {
                // SAFETY: a sockaddr of family AF_INET6 is a sockaddr_in6.
                let sin6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
            } else {
                continue;
            };
            out.push(super::canonical(ip));
        }
        // SAFETY: `list` came from getifaddrs and nothing borrowed from it is used past here.
        unsafe { libc::freeifaddrs(list) };
        Ok(out)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::ffi::CStr;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::process::Command;

    fn host(a: &str) -> bool {
        is_host_address(a.parse().unwrap()).unwrap_or_else(|e| panic!("{a}: {e}"))
    }

    /// The interface-list answer macOS uses agrees with the kernel's route lookup here: every
    /// address of this host's interfaces (up) is the host's for both; others are not.
    #[test]
    fn the_interface_list_answer_agrees_with_the_route_lookup() {
        let own = super::ifaddrs::addresses().unwrap();
        assert!(own.contains(&IpAddr::from([127, 0, 0, 1])), "{own:?}");
        for (name, a) in interface_addresses() {
            assert!(super::among(canonical(a), &own), "{a} of {name}");
            assert!(host(&a.to_string()), "{a} of {name}");
        }
        for a in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
        ] {
            let ip = canonical(a.parse().unwrap());
            assert!(super::among(ip, &own), "{a}");
        }
        for a in ["192.0.2.1", "8.8.8.8", "2001:db8::1", "::ffff:192.0.2.1"] {
            let ip = canonical(a.parse().unwrap());
            assert!(!super::among(ip, &own), "{a} is not this host's");
            assert!(!host(a), "{a}");
        }
    }

    /// The addresses of this host's interfaces that are up, from `getifaddrs` (the kernel's
    /// address list, not its routes), less IPv6 addresses that are not usable yet or any more
    /// (tentative, failed duplicate detection: the kernel has no local route for them).
    fn interface_addresses() -> Vec<(String, IpAddr)> {
        let unusable: Vec<Ipv6Addr> = std::fs::read_to_string("/proc/net/if_inet6")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let flags = u32::from_str_radix(f.get(4)?, 16).ok()?;
                let bits = u128::from_str_radix(f.first()?, 16).ok()?;
                let unusable = libc::IFA_F_TENTATIVE | libc::IFA_F_DADFAILED;
                (flags & unusable != 0).then(|| Ipv6Addr::from(bits))
            })
            .collect();
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs stores the head of a list it allocates in `list`; freed below.
        let r = unsafe { libc::getifaddrs(&mut list) };
        assert_eq!(r, 0, "getifaddrs: {}", io::Error::last_os_error());
        let mut out = Vec::new();
        let mut node = list;
        while !node.is_null() {
            // SAFETY: `node` is a node of the list getifaddrs returned, which is not freed yet.
            let ifa = unsafe { &*node };
            node = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || ifa.ifa_flags & libc::IFF_UP as u32 == 0 {
                continue;
            }
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
            let name = name.to_string_lossy().into_owned();
            // SAFETY: ifa_addr is non-null and points to a sockaddr owned by the list.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            let ip = match family {
                libc::AF_INET => {
                    // SAFETY: a sockaddr of family AF_INET is a sockaddr_in.
                    let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    // SAFETY: a sockaddr of family AF_INET6 is a sockaddr_in6.
                    let sin6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                    let a = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                    if unusable.contains(&a) {
                        continue;
                    }
                    IpAddr::V6(a)
                }
                _ => continue,
            };
            out.push((name, ip));
        }
        // SAFETY: `list` came from getifaddrs and nothing borrowed from it is used past here.
        unsafe { libc::freeifaddrs(list) };
        out
    }

    #[test]
    fn this_hosts_addresses_are_host_addresses() {
        for a in ["127.0.0.1", "127.3.2.1", "::ffff:127.0.0.1", "0.0.0.0"] {
            assert!(host(a), "{a}");
        }
        let addrs = interface_addresses();
        assert!(
            addrs
                .iter()
                .any(|(_, a)| *a == IpAddr::from([127, 0, 0, 1])),
            "no 127.0.0.1 among {addrs:?}"
        );
        if addrs
            .iter()
            .any(|(_, a)| *a == IpAddr::from(Ipv6Addr::LOCALHOST))
        {
            assert!(host("::1"));
        }
        for (name, a) in &addrs {
            assert!(
                is_host_address(*a).unwrap(),
                "{a} of {name} is not a host address"
            );
            if let IpAddr::V4(v4) = a {
                let mapped = IpAddr::V6(v4.to_ipv6_mapped());
                assert!(is_host_address(mapped).unwrap(), "{mapped} of {name}");
            }
        }
        eprintln!("checked {} interface addresses: {addrs:?}", addrs.len());
    }

    #[test]
    fn addresses_elsewhere_are_not() {
        // Route lookups only: no packet is sent.
        for a in ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!host(a), "{a}");
        }
    }

    const NETNS_ENV: &str = "NANOBOX_TEST_OWN_NETNS";

    /// Re-runs `in_own_netns_entry` under `unshare -rn` (a new user and network namespace, as
    /// root or not), where it can give addresses to its own loopback interface.
    #[test]
    fn in_own_network_namespace() {
        let path = concat!(module_path!(), "::in_own_netns_entry");
        let name = path.split_once("::").map_or(path, |(_, rest)| rest);
        let out = Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                name,
                "--nocapture",
                "--test-threads=1",
            ])
            .env(NETNS_ENV, "1")
            .output();
        let out = match out {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("skipped: unshare (util-linux) is not installed");
                return;
            }
            r => r.expect("unshare runs"),
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{name} under unshare -rn failed:\n{stdout}\n{stderr}"
        );
    }

    fn ip(args: &str) {
        let out = Command::new("ip")
            .args(args.split(' '))
            .output()
            .expect("ip (iproute2) runs");
        assert!(
            out.status.success(),
            "ip {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "entry point of `in_own_network_namespace`, which runs it in a network namespace of its own"]
    fn in_own_netns_entry() {
        // It changes the namespace's addresses and routes: refuse to run in any other.
        assert_eq!(
            std::env::var(NETNS_ENV).as_deref(),
            Ok("1"),
            "run only by in_own_network_namespace"
        );
        let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
        let links: Vec<&str> = dev
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .collect();
        assert_eq!(
            links.iter().map(|l| l.trim()).collect::<Vec<_>>(),
            ["lo"],
            "not a new namespace"
        );

        // Nothing is up: no route anywhere, and "no route" is not a host address.
        for a in ["127.0.0.1", "8.8.8.8", "::1"] {
            assert!(!host(a), "{a} with lo down");
        }
        ip("link set lo up");
        assert!(host("127.0.0.1"));
        assert!(host("::1"));
        ip("addr add 8.8.8.8/32 dev lo");
        ip("route add local 198.51.100.0/24 dev lo");
        ip("addr add 10.9.0.1/24 broadcast 10.9.0.255 dev lo");
        ip("-6 addr add 2001:db8::5/128 dev lo");
        ip("-6 route add local 2001:db8:1::/64 dev lo");
        for a in [
            "8.8.8.8",
            "::ffff:8.8.8.8",
            "198.51.100.0",
            "198.51.100.7",
            "198.51.100.255",
            "10.9.0.1",
            "10.9.0.255", // broadcast
            "2001:db8::5",
            "2001:db8:1::1",
            "2001:db8:1:0:ffff:ffff:ffff:ffff",
        ] {
            assert!(host(a), "{a}");
        }
        // no route
        for a in ["8.8.4.4", "198.51.101.1", "2001:db8::6", "2001:db8:2::1"] {
            assert!(!host(a), "{a} without a route");
        }
        // a unicast route
        ip("route add default dev lo");
        ip("-6 route add default dev lo");
        for a in ["8.8.4.4", "198.51.101.1", "2001:db8::6", "2606:4700::1111"] {
            assert!(!host(a), "{a} with a default route");
        }
        for a in ["255.255.255.255", "224.0.0.251"] {
            assert!(host(a), "{a} with a default route");
        }
        // Routes that deliver nowhere: an error, like the connect would be; unreachable: false.
        ip("route add blackhole 8.8.4.0/24");
        ip("route add prohibit 8.8.5.0/24");
        ip("route add unreachable 8.8.6.0/24");
        for a in ["8.8.4.4", "8.8.5.5"] {
            let r = is_host_address(a.parse().unwrap());
            assert!(r.is_err(), "{a}: {r:?}");
        }
        assert!(!host("8.8.6.6"));
        // removed again: not a host address any more
        ip("addr del 8.8.8.8/32 dev lo");
        assert!(!host("8.8.8.8"));

        // The namespace is the calling thread's: a thread in a namespace of its own (nothing
        // configured) does not see this one's addresses.
        std::thread::spawn(|| {
            // SAFETY: unsharing only the network namespace of this thread, which shares no file
            // descriptor table state with the flag.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                .expect("unshare(CLONE_NEWNET) as root of the user namespace");
            assert!(!host("198.51.100.7"), "the new namespace has no such route");
        })
        .join()
        .unwrap();
        assert!(host("198.51.100.7"));
    }
}
