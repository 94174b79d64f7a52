//! The proxy server: an accept thread and one thread per connection (two while a tunnel or a
//! response is relayed). See the module documentation of [`super`] for the design.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

use super::addr::classify;
use super::head::{
    error_response, forward_head, head_end, parse_request_head, response_status, Body, RequestHead,
    Target,
};
use super::pattern::Host;
use super::{NetworkEvent, ProxyConfig};

const LISTEN: Token = Token(0);
const WAKE: Token = Token(1);
/// A relay buffer starts at this size ...
const RELAY_BUF: usize = 64 * 1024;
/// ... and doubles, while reads fill it and the server's budget
/// ([`Limits::relay_memory`](super::Limits::relay_memory)) allows, up to this size.
const MAX_RELAY_BUF: usize = 4 * 1024 * 1024;
const STACK: usize = 256 * 1024;
/// After an error response, at most this much of the client's unread request is read and dropped
/// (so that closing does not reset the connection before the client reads the answer).
const DRAIN_BYTES: u64 = 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct EventSlot {
    event: Mutex<NetworkEvent>,
    up: AtomicU64,
    down: AtomicU64,
}

impl EventSlot {
    fn snapshot(&self) -> NetworkEvent {
        let mut e = lock(&self.event).clone();
        e.bytes_up = self.up.load(Ordering::Relaxed);
        e.bytes_down = self.down.load(Ordering::Relaxed);
        e
    }
    fn set_reason(&self, reason: String) {
        lock(&self.event).reason = Some(reason);
    }
}

#[derive(Default)]
struct Registry {
    stopping: bool,
    streams: std::collections::HashMap<u64, Vec<Arc<TcpStream>>>,
}

struct Shared {
    config: ProxyConfig,
    stopping: AtomicBool,
    registry: Mutex<Registry>,
    events: Mutex<Vec<Arc<EventSlot>>>,
    /// Bytes relay buffers may still grow by, together.
    relay_budget: Arc<AtomicUsize>,
}

impl Shared {
    /// Makes `s` shut down by `stop`; false (and `s` shut down) when stopping already.
    fn register(&self, id: u64, s: &Arc<TcpStream>) -> bool {
        let mut r = lock(&self.registry);
        if r.stopping {
            let _ = s.shutdown(Shutdown::Both);
            return false;
        }
        r.streams.entry(id).or_default().push(s.clone());
        true
    }

    fn unregister(&self, id: u64) {
        lock(&self.registry).streams.remove(&id);
    }

    fn record(&self, event: NetworkEvent) -> Arc<EventSlot> {
        let slot = Arc::new(EventSlot {
            event: Mutex::new(event),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
        });
        let mut events = lock(&self.events);
        if events.len() < self.config.limits.max_events {
            events.push(slot.clone());
        }
        slot
    }

    fn events(&self) -> Vec<NetworkEvent> {
        lock(&self.events).iter().map(|s| s.snapshot()).collect()
    }
}

/// The filtering proxy.
pub struct ProxyServer;

/// A running proxy; [`stop`](ProxyHandle::stop) (or dropping it) ends it.
pub struct ProxyHandle {
    shared: Arc<Shared>,
    waker: Option<Waker>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHandle").finish_non_exhaustive()
    }
}

impl ProxyServer {
    /// Serves the proxy on `listener` (any bound, listening TCP socket, e.g. one made inside the
    /// sandbox's network namespace) until the handle is stopped. The listener is owned and closed by
    /// the proxy.
    pub fn start(listener: TcpListener, config: ProxyConfig) -> io::Result<ProxyHandle> {
        listener.set_nonblocking(true)?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        poll.registry()
            .register(&mut listener, LISTEN, Interest::READABLE)?;
        let relay_memory = config.limits.relay_memory;
        let shared = Arc::new(Shared {
            config,
            stopping: AtomicBool::new(false),
            registry: Mutex::new(Registry::default()),
            events: Mutex::new(Vec::new()),
            relay_budget: Arc::new(AtomicUsize::new(relay_memory)),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("nanobox-proxy".into())
            .stack_size(STACK)
            .spawn(move || accept_loop(&s, poll, listener))?;
        Ok(ProxyHandle {
            shared,
            waker: Some(waker),
            accept: Some(accept),
        })
    }
}

impl ProxyHandle {
    /// Every connection attempt so far (requests in progress included, with their bytes so far).
    pub fn events(&self) -> Vec<NetworkEvent> {
        self.shared.events()
    }

    /// Stops accepting, shuts down every connection, joins every thread, closes every socket, and
    /// returns the final events.
    pub fn stop(mut self) -> Vec<NetworkEvent> {
        self.shutdown();
        self.shared.events()
    }

    fn shutdown(&mut self) {
        {
            let mut r = lock(&self.shared.registry);
            r.stopping = true;
            self.shared.stopping.store(true, Ordering::SeqCst);
            for s in r.streams.values().flatten() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        if let Some(w) = &self.waker {
            let _ = w.wake();
        }
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        self.waker = None;
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(shared: &Arc<Shared>, mut poll: Poll, listener: mio::net::TcpListener) {
    let mut events = Events::with_capacity(64);
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    let mut retry = false;
    while !shared.stopping.load(Ordering::SeqCst) {
        let timeout = retry.then(|| Duration::from_millis(50));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                std::thread::sleep(Duration::from_millis(50));
            }
            continue;
        }
        retry = false;
        while !shared.stopping.load(Ordering::SeqCst) {
            let stream = match listener.accept() {
                Ok((s, _)) => TcpStream::from(s),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    // e.g. EMFILE: the connection stays queued; try again shortly (mio is
                    // edge-triggered, so no new event would come for it).
                    retry = true;
                    break;
                }
            };
            threads.retain(|t| !t.is_finished());
            if threads.len() >= shared.config.limits.max_connections {
                let _ = stream.set_nonblocking(true);
                let _ = (&stream).write(&error_response(
                    503,
                    "Service Unavailable",
                    "nanobox proxy: too many connections\n",
                ));
                continue;
            }
            next_id += 1;
            let id = next_id;
            let s = shared.clone();
            let spawned = std::thread::Builder::new()
                .name("nanobox-proxy-conn".into())
                .stack_size(STACK)
                .spawn(move || connection(&s, stream, id));
            if let Ok(t) = spawned {
                threads.push(t);
            }
        }
    }
    drop(listener);
    for t in threads {
        let _ = t.join();
    }
}

fn connection(shared: &Shared, stream: TcpStream, id: u64) {
    let client = Arc::new(stream);
    if client.set_nonblocking(false).is_err() || !shared.register(id, &client) {
        return;
    }
    let _ = client.set_nodelay(true);
    let _ = serve(shared, &client, id);
    shared.unregister(id);
}

/// Why a request ends in an error response.
struct Refusal {
    status: u16,
    reason: &'static str,
    body: String,
}

impl Refusal {
    fn new(status: u16, body: String) -> Self {
        let reason = match status {
            400 => "Bad Request",
            403 => "Forbidden",
            408 => "Request Timeout",
            502 => "Bad Gateway",
            _ => "Error",
        };
        Refusal {
            status,
            reason,
            body,
        }
    }
}

fn serve(shared: &Shared, client: &Arc<TcpStream>, id: u64) -> io::Result<()> {
    let limits = &shared.config.limits;
    let (req, leftover) = match read_head(
        client,
        limits.max_head_bytes,
        limits.max_header_lines,
        limits.head_timeout,
    ) {
        Ok(Some(x)) => x,
        Ok(None) => return Ok(()),
        Err(r) => return refuse(client, r),
    };
    let host = req.host.to_string();
    let Some(pattern) = shared.config.allow.allows_host(&req.host, req.port) else {
        shared.record(NetworkEvent::new(
            &host,
            req.port,
            false,
            None,
            Some("not in the allowlist".into()),
        ));
        let patterns = shared.config.allow.patterns();
        let list = if patterns.is_empty() {
            "(none)".to_string()
        } else {
            patterns.join(", ")
        };
        return refuse(
            client,
            Refusal::new(
                403,
                format!(
                    "nanobox proxy: {host}:{} is not in the sandbox's network allowlist; the request was refused.\n\
                     Allowed patterns: {list}\n",
                    req.port
                ),
            ),
        );
    };
    let slot = shared.record(NetworkEvent::new(
        &host,
        req.port,
        true,
        Some(pattern.to_string()),
        None,
    ));

    // Resolve once, check every answer, connect only to checked addresses.
    let addrs = match check_addresses(shared, &req) {
        Ok(a) => a,
        Err((status, why, body)) => {
            {
                let mut e = lock(&slot.event);
                e.allowed = status != 403;
                e.reason = Some(why);
            }
            return refuse(client, Refusal::new(status, body));
        }
    };

    let connected = match &shared.config.upstream {
        None => connect_any(shared, &addrs, req.port),
        Some(u) => connect_upstream(shared, u),
    };
    let (upstream, addr) = match connected {
        Ok(x) => x,
        Err(e) => {
            slot.set_reason(format!("connect failed: {e}"));
            return refuse(
                client,
                Refusal::new(
                    502,
                    format!(
                        "nanobox proxy: cannot connect to {host}:{}: {e}\n",
                        req.port
                    ),
                ),
            );
        }
    };
    let upstream = Arc::new(upstream);
    if !shared.register(id, &upstream) {
        return Ok(());
    }
    let _ = upstream.set_nodelay(true);
    let checked = SocketAddr::new(addrs[0], req.port);
    lock(&slot.event).address = Some(match &shared.config.upstream {
        None => addr.to_string(),
        Some(_) => checked.to_string(),
    });

    match (&req.target, &shared.config.upstream) {
        (Target::Connect, None) => {
            client_write(
                client,
                b"HTTP/1.1 200 Connection established\r\n\r\n",
                limits.idle_timeout,
            )?;
            tunnel(shared, client, &upstream, &leftover, &slot)
        }
        (Target::Connect, Some(u)) => {
            let auth: Vec<(&str, &str)> = u
                .authorization
                .iter()
                .map(|a| ("Proxy-Authorization", a.as_str()))
                .collect();
            let mut head = format!("CONNECT {checked} HTTP/1.1\r\nHost: {checked}\r\n");
            for (n, v) in &auth {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            client_write(&upstream, head.as_bytes(), limits.idle_timeout)?;
            let (status, rest) =
                match read_response_head(&upstream, limits.max_head_bytes, limits.head_timeout) {
                    Ok(x) => x,
                    Err(e) => {
                        slot.set_reason(format!("upstream proxy: {e}"));
                        return refuse(
                            client,
                            Refusal::new(
                                502,
                                format!("nanobox proxy: upstream proxy failed: {e}\n"),
                            ),
                        );
                    }
                };
            if !(200..300).contains(&status) {
                slot.set_reason(format!("upstream proxy answered {status}"));
                return refuse(
                    client,
                    Refusal::new(502, format!("nanobox proxy: the upstream proxy answered {status} to CONNECT {host}:{}\n", req.port)),
                );
            }
            client_write(
                client,
                b"HTTP/1.1 200 Connection established\r\n\r\n",
                limits.idle_timeout,
            )?;
            client_write(client, &rest, limits.idle_timeout)?;
            slot.down.fetch_add(rest.len() as u64, Ordering::Relaxed);
            tunnel(shared, client, &upstream, &leftover, &slot)
        }
        (Target::Forward { path }, upstream_proxy) => {
            let head = match upstream_proxy {
                None => forward_head(&req, path, &[]),
                Some(u) => {
                    let target = format!("http://{checked}{path}");
                    match &u.authorization {
                        Some(a) => forward_head(&req, &target, &[("Proxy-Authorization", a)]),
                        None => forward_head(&req, &target, &[]),
                    }
                }
            };
            forward(shared, client, &upstream, &head, &req, leftover, &slot)
        }
    }
}

type AddressError = (u16, String, String);

fn check_addresses(shared: &Shared, req: &RequestHead) -> Result<Vec<IpAddr>, AddressError> {
    let cfg = &shared.config;
    let (name, addrs) = match &req.host {
        Host::Ip(ip) => (None, vec![*ip]),
        Host::Name(n) => match cfg.resolver.resolve(n, req.port) {
            Ok(a) if !a.is_empty() => (Some(n.as_str()), a),
            Ok(_) => return Err(resolve_error(n, "no address")),
            Err(e) => return Err(resolve_error(n, &e.to_string())),
        },
    };
    for &addr in &addrs {
        let Some(class) = classify(addr) else {
            continue;
        };
        let explicit = cfg.allow_addresses.iter().any(|c| c.contains(addr))
            || name.is_some_and(|n| cfg.resolver.pinned(n, addr));
        if !explicit {
            let what = match name {
                Some(n) => format!("{n} resolves to {addr}, a {class} address"),
                None => format!("{addr} is a {class} address"),
            };
            return Err((
                403,
                format!("{class} address {addr}"),
                format!(
                    "nanobox proxy: refused {}:{}: {what}, and the sandbox does not allow {class} \
                     addresses unless they are allowed explicitly.\n",
                    req.host, req.port
                ),
            ));
        }
    }
    Ok(addrs)
}

fn resolve_error(name: &str, why: &str) -> AddressError {
    (
        502,
        format!("cannot resolve: {why}"),
        format!("nanobox proxy: cannot resolve {name}: {why}\n"),
    )
}

/// Connects to the first of the checked `addrs` that answers.
fn connect_any(
    shared: &Shared,
    addrs: &[IpAddr],
    port: u16,
) -> io::Result<(TcpStream, SocketAddr)> {
    let addrs: Vec<SocketAddr> = addrs.iter().map(|&a| SocketAddr::new(a, port)).collect();
    connect_sockets(shared, &addrs)
}

fn connect_upstream(shared: &Shared, u: &super::Upstream) -> io::Result<(TcpStream, SocketAddr)> {
    let addrs: Vec<SocketAddr> = (u.host.as_str(), u.port).to_socket_addrs()?.collect();
    connect_sockets(shared, &addrs)
}

fn connect_sockets(shared: &Shared, addrs: &[SocketAddr]) -> io::Result<(TcpStream, SocketAddr)> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for &a in addrs {
        match connect_one(shared, a) {
            Ok(s) => return Ok((s, a)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A non-blocking connect that gives up at the connect timeout or when the proxy stops.
fn connect_one(shared: &Shared, addr: SocketAddr) -> io::Result<TcpStream> {
    let mut s = mio::net::TcpStream::connect(addr)?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut s, Token(0), Interest::WRITABLE)?;
    let deadline = Instant::now() + shared.config.limits.connect_timeout;
    let mut events = Events::with_capacity(4);
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "proxy stopping"));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        match poll.poll(
            &mut events,
            Some((deadline - now).min(Duration::from_millis(100))),
        ) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if events.is_empty() {
            continue;
        }
        if let Some(e) = s.take_error()? {
            return Err(e);
        }
        match s.peer_addr() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
            Err(e) => return Err(e),
        }
    }
    poll.registry().deregister(&mut s)?;
    let s = TcpStream::from(s);
    s.set_nonblocking(false)?;
    // Like the client side: relayed bytes go out as they come, not held back by Nagle.
    let _ = s.set_nodelay(true);
    Ok(s)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads a request head within the bounds. `Ok(None)`: the client left before sending anything.
fn read_head(
    client: &TcpStream,
    max_bytes: usize,
    max_lines: usize,
    timeout: Duration,
) -> Result<Option<(RequestHead, Vec<u8>)>, Refusal> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 4096.min(max_bytes)];
    let mut len = 0;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Refusal::new(
                408,
                "nanobox proxy: timed out reading the request head\n".into(),
            ));
        }
        let _ = client.set_read_timeout(Some(deadline - now));
        if len == buf.len() {
            buf.resize((buf.len() * 2).min(max_bytes), 0);
        }
        let n = match (&*client).read(&mut buf[len..]) {
            Ok(0) if len == 0 => return Ok(None),
            Ok(0) => {
                return Err(Refusal::new(
                    400,
                    "nanobox proxy: incomplete request head\n".into(),
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => return Ok(None),
        };
        let from = len.saturating_sub(3);
        len += n;
        if let Some(end) = head_end(&buf[from..len]).map(|e| e + from) {
            let head = parse_request_head(&buf[..end], max_lines)
                .map_err(|e| Refusal::new(400, format!("nanobox proxy: {e}\n")))?;
            return Ok(Some((head, buf[end..len].to_vec())));
        }
        if len >= max_bytes {
            let e = super::head::HeadError::TooLarge(max_bytes);
            return Err(Refusal::new(400, format!("nanobox proxy: {e}\n")));
        }
    }
}

/// Reads an upstream proxy's response head; returns its status and the bytes after it.
fn read_response_head(s: &TcpStream, max: usize, timeout: Duration) -> io::Result<(u16, Vec<u8>)> {
    let _ = s.set_read_timeout(Some(timeout));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = (&*s).read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before answering",
            ));
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf[from..]).map(|e| e + from) {
            let status = response_status(&buf[..end])
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed answer"))?;
            return Ok((status, buf[end..].to_vec()));
        }
        if buf.len() >= max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "answer head too large",
            ));
        }
    }
}

fn client_write(s: &TcpStream, data: &[u8], timeout: Duration) -> io::Result<()> {
    let _ = s.set_write_timeout(Some(timeout));
    (&*s).write_all(data)
}

/// Sends an error response, then reads and drops a bounded amount of what the client still sends
/// before closing, so that the close does not reset the connection under the client's read.
fn refuse(client: &TcpStream, r: Refusal) -> io::Result<()> {
    let resp = error_response(r.status, r.reason, &r.body);
    client_write(client, &resp, Duration::from_secs(5))?;
    drain(client);
    Ok(())
}

/// Half-closes `client`, then reads and drops what it still sends (bounded in bytes and time), so
/// that closing does not reset the connection before the client has read our answer.
fn drain(client: &TcpStream) {
    let _ = client.shutdown(Shutdown::Write);
    let deadline = Instant::now() + DRAIN_TIME;
    let mut drained = 0u64;
    let mut buf = [0u8; 8192];
    while drained < DRAIN_BYTES {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let _ = client.set_read_timeout(Some(deadline - now));
        match (&*client).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => drained += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
}

/// Idle tracking shared by the two directions of a connection.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    idle: Duration,
}

impl Activity {
    fn new(idle: Duration) -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            idle,
        }
    }
    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn idle_expired(&self) -> bool {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last) >= self.idle
    }
}

/// A relay buffer: [`RELAY_BUF`] bytes, doubled each time a read fills it (a bulk transfer), up to
/// [`MAX_RELAY_BUF`], for as long as the server's shared budget has the bytes. Fewer, larger reads
/// and writes are what make a bulk transfer fast; an interactive stream never grows its buffer.
struct RelayBuf<'a> {
    buf: Vec<u8>,
    budget: &'a AtomicUsize,
}

impl<'a> RelayBuf<'a> {
    fn new(budget: &'a AtomicUsize) -> Self {
        RelayBuf {
            buf: vec![0; RELAY_BUF],
            budget,
        }
    }

    /// Called after a read of `n` bytes.
    fn filled(&mut self, n: usize) {
        let len = self.buf.len();
        if n < len || len >= MAX_RELAY_BUF {
            return;
        }
        let take = |left: usize| left.checked_sub(len);
        if self
            .budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, take)
            .is_ok()
        {
            // A fresh buffer, not a resize: the old bytes are already relayed.
            self.buf = vec![0; 2 * len];
        }
    }
}

impl Drop for RelayBuf<'_> {
    fn drop(&mut self) {
        self.budget
            .fetch_add(self.buf.len() - RELAY_BUF, Ordering::AcqRel);
    }
}

/// Copies `from` → `to` until EOF (then half-closes `to`), an error, or the idle timeout (then
/// shuts down both sockets, which ends the other direction too). Counts into `counter`.
///
/// A plain read/write copy: on loopback (`benches/proxy.rs`), it carries a bulk download faster
/// and with less CPU per byte than `splice(2)` through a pipe.
fn pump(
    from: &TcpStream,
    to: &TcpStream,
    activity: &Activity,
    counter: &AtomicU64,
    budget: &AtomicUsize,
) {
    let _ = from.set_read_timeout(Some(activity.idle));
    let _ = to.set_write_timeout(Some(activity.idle));
    let mut buf = RelayBuf::new(budget);
    loop {
        match (&*from).read(&mut buf.buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                activity.touch();
                if (&*to).write_all(&buf.buf[..n]).is_err() {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
                activity.touch();
                buf.filled(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) && !activity.idle_expired() => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

fn spawn_pump(
    shared: &Shared,
    from: &Arc<TcpStream>,
    to: &Arc<TcpStream>,
    activity: &Arc<Activity>,
    slot: &Arc<EventSlot>,
) -> io::Result<JoinHandle<()>> {
    let (from, to, activity, slot) = (from.clone(), to.clone(), activity.clone(), slot.clone());
    let budget = shared.relay_budget.clone();
    std::thread::Builder::new()
        .name("nanobox-proxy-down".into())
        .stack_size(STACK)
        .spawn(move || pump(&from, &to, &activity, &slot.down, &budget))
}

fn tunnel(
    shared: &Shared,
    client: &Arc<TcpStream>,
    upstream: &Arc<TcpStream>,
    leftover: &[u8],
    slot: &Arc<EventSlot>,
) -> io::Result<()> {
    let activity = Arc::new(Activity::new(shared.config.limits.idle_timeout));
    if !leftover.is_empty() {
        client_write(upstream, leftover, activity.idle)?;
        slot.up.fetch_add(leftover.len() as u64, Ordering::Relaxed);
    }
    let down = spawn_pump(shared, upstream, client, &activity, slot)?;
    pump(client, upstream, &activity, &slot.up, &shared.relay_budget);
    let _ = down.join();
    Ok(())
}

/// Sends one plain-HTTP request (head, then exactly its body) while relaying the response back,
/// then closes: a request that follows on the same client connection is never forwarded.
fn forward(
    shared: &Shared,
    client: &Arc<TcpStream>,
    upstream: &Arc<TcpStream>,
    head: &[u8],
    req: &RequestHead,
    leftover: Vec<u8>,
    slot: &Arc<EventSlot>,
) -> io::Result<()> {
    let activity = Arc::new(Activity::new(shared.config.limits.idle_timeout));
    let down = spawn_pump(shared, upstream, client, &activity, slot)?;
    let mut body = BodySource {
        client,
        upstream,
        pending: leftover,
        pos: 0,
        activity: &activity,
        counter: &slot.up,
    };
    let sent = body.send(head).and_then(|()| match req.body {
        Body::None => Ok(()),
        Body::Length(n) => body.copy(n),
        Body::Chunked => body.chunked(shared.config.limits.max_head_bytes),
    });
    if sent.is_err() {
        let _ = upstream.shutdown(Shutdown::Both);
    }
    let _ = down.join();
    drain(client);
    Ok(())
}

/// The request body, read from what followed the head and then from the client.
struct BodySource<'a> {
    client: &'a TcpStream,
    upstream: &'a TcpStream,
    pending: Vec<u8>,
    pos: usize,
    activity: &'a Activity,
    counter: &'a AtomicU64,
}

impl BodySource<'_> {
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let _ = self.upstream.set_write_timeout(Some(self.activity.idle));
        self.upstream.write_all(data)?;
        self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        self.activity.touch();
        Ok(())
    }

    /// Makes unread bytes available (reading from the client when none are pending).
    fn fill(&mut self) -> io::Result<()> {
        if self.pos < self.pending.len() {
            return Ok(());
        }
        let _ = self.client.set_read_timeout(Some(self.activity.idle));
        self.pending.resize(RELAY_BUF, 0);
        self.pos = 0;
        loop {
            match self.client.read(&mut self.pending) {
                Ok(0) => {
                    self.pending.clear();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "body cut short",
                    ));
                }
                Ok(n) => {
                    self.pending.truncate(n);
                    self.activity.touch();
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) && !self.activity.idle_expired() => {}
                Err(e) => {
                    self.pending.clear();
                    return Err(e);
                }
            }
        }
    }

    fn copy(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            self.fill()?;
            let avail = &self.pending[self.pos..];
            let take = avail.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let chunk = avail[..take].to_vec();
            self.pos += take;
            self.send(&chunk)?;
            n -= take as u64;
        }
        Ok(())
    }

    /// One line through CRLF, forwarded; at most `max` bytes.
    fn line(&mut self, max: usize) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            self.fill()?;
            let b = self.pending[self.pos];
            self.pos += 1;
            line.push(b);
            if line.ends_with(b"\r\n") {
                self.send(&line)?;
                return Ok(line);
            }
            if line.len() >= max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk line too long",
                ));
            }
        }
    }

    fn chunked(&mut self, max_trailers: usize) -> io::Result<()> {
        let invalid = || io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body");
        loop {
            let line = self.line(4096)?;
            let text = std::str::from_utf8(&line[..line.len() - 2]).map_err(|_| invalid())?;
            let size = text
                .split(';')
                .next()
                .unwrap_or("")
                .trim_matches([' ', '\t']);
            if size.is_empty() || size.len() > 15 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            let size = u64::from_str_radix(size, 16).map_err(|_| invalid())?;
            if size == 0 {
                let mut total = 0;
                loop {
                    let t = self.line(max_trailers)?;
                    total += t.len();
                    if t == b"\r\n" {
                        return Ok(());
                    }
                    if total > max_trailers {
                        return Err(invalid());
                    }
                }
            }
            self.copy(size)?;
            if self.line(2)? != b"\r\n" {
                return Err(invalid());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_buffer_grows_only_on_full_reads_up_to_the_cap() {
        let budget = AtomicUsize::new(usize::MAX / 2);
        let start = budget.load(Ordering::SeqCst);
        let mut b = RelayBuf::new(&budget);
        assert_eq!(b.buf.len(), RELAY_BUF);
        b.filled(RELAY_BUF - 1); // a short read: an interactive stream keeps its buffer
        assert_eq!(b.buf.len(), RELAY_BUF);
        let mut sizes = Vec::new();
        for _ in 0..20 {
            let n = b.buf.len();
            b.filled(n);
            sizes.push(b.buf.len());
        }
        assert_eq!(
            &sizes[..7],
            &[128, 256, 512, 1024, 2048, 4096, 4096].map(|k| k * 1024)
        );
        assert_eq!(*sizes.last().unwrap(), MAX_RELAY_BUF);
        assert_eq!(
            start - budget.load(Ordering::SeqCst),
            MAX_RELAY_BUF - RELAY_BUF
        );
        drop(b);
        assert_eq!(budget.load(Ordering::SeqCst), start, "growth is returned");
    }

    #[test]
    fn relay_buffers_share_one_budget() {
        // Room for one buffer to grow to 256 KiB (64 + 192 KiB), and nothing more.
        let budget = AtomicUsize::new(3 * RELAY_BUF);
        let mut a = RelayBuf::new(&budget);
        let mut b = RelayBuf::new(&budget);
        for _ in 0..10 {
            let n = a.buf.len();
            a.filled(n);
        }
        assert_eq!(a.buf.len(), 4 * RELAY_BUF);
        assert_eq!(budget.load(Ordering::SeqCst), 0);
        b.filled(RELAY_BUF);
        assert_eq!(b.buf.len(), RELAY_BUF, "no budget left to grow");
        drop(a);
        b.filled(RELAY_BUF);
        assert_eq!(b.buf.len(), 2 * RELAY_BUF, "the budget came back");
        drop(b);
        assert_eq!(budget.load(Ordering::SeqCst), 3 * RELAY_BUF);
    }

    #[test]
    fn a_zero_budget_never_grows() {
        let budget = AtomicUsize::new(0);
        let mut b = RelayBuf::new(&budget);
        for _ in 0..5 {
            b.filled(RELAY_BUF);
        }
        assert_eq!(b.buf.len(), RELAY_BUF);
    }
}
