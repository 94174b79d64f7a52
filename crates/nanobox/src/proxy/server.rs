//! The proxy server: one thread per proxy running a single-threaded tokio runtime, every
//! connection a task on it. See the module documentation of [`super`] for the design.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::addr::classify;
use super::head::{
    cannot_start_a_request, error_response, forward_head, head_end, parse_request_head,
    parse_tunneled_head, response_status, Body, HeadError, RequestHead, Target,
};
use super::local::is_host_address;
use super::pattern::Host;
use super::resolve::{Resolver, SystemResolver};
use super::{NetworkEvent, NetworkLog, ProxyConfig};

/// A relay buffer starts at this size ...
const RELAY_BUF: usize = 64 * 1024;
/// ... and doubles, while reads fill it and the server's budget
/// ([`Limits::relay_memory`](super::Limits::relay_memory)) allows, up to this size.
const MAX_RELAY_BUF: usize = 4 * 1024 * 1024;
/// The proxy thread's stack (tasks live on the heap; this holds the runtime and one poll).
const STACK: usize = 1024 * 1024;
/// After an error response, at most this much of the client's unread request is read and dropped
/// (so that closing does not reset the connection before the client reads the answer).
const DRAIN_BYTES: u64 = 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);
/// Time to write an error response.
const REFUSE_TIME: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What makes two requests one log entry.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    host: String,
    port: u16,
    allowed: bool,
    pattern: Option<String>,
    address: Option<String>,
    reason: Option<String>,
}

impl Key {
    fn of(e: &NetworkEvent) -> Key {
        Key {
            host: e.host.clone(),
            port: e.port,
            allowed: e.allowed,
            pattern: e.pattern.clone(),
            address: e.address.clone(),
            reason: e.reason.clone(),
        }
    }
}

/// An allowed request in progress.
struct Live {
    event: Mutex<NetworkEvent>,
    up: AtomicU64,
    down: AtomicU64,
}

impl Live {
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

/// The aggregated log (see *The log* in the module documentation).
#[derive(Default)]
struct Log {
    entries: Vec<NetworkEvent>,
    index: HashMap<Key, usize>,
    allowed_entries: usize,
    refused_entries: usize,
    /// Allowed requests in progress that may still add one allowed entry each.
    reserved: usize,
    /// The first allowed entry of each destination (host, port, pattern).
    destinations: HashMap<(String, u16, Option<String>), usize>,
    live: BTreeMap<u64, Arc<Live>>,
    omitted: u64,
}

impl Log {
    /// Folds a finished request (or several alike) into the log. `reserved`: an allowed request
    /// that was given room for an entry of its own when it was admitted.
    fn add(&mut self, e: NetworkEvent, max: usize, reserved: bool) {
        let key = Key::of(&e);
        let dest = (e.host.clone(), e.port, e.pattern.clone());
        let merge = |x: &mut NetworkEvent, e: &NetworkEvent| {
            x.count += e.count;
            x.bytes_up += e.bytes_up;
            x.bytes_down += e.bytes_down;
        };
        if let Some(&i) = self.index.get(&key) {
            merge(&mut self.entries[i], &e);
            return;
        }
        if e.allowed {
            if !reserved && self.allowed_entries >= max {
                // The log is full and this destination has an entry (else it would not have
                // been admitted): it counts there.
                if let Some(&i) = self.destinations.get(&dest) {
                    merge(&mut self.entries[i], &e);
                    return;
                }
            }
            self.allowed_entries += 1;
            self.destinations.entry(dest).or_insert(self.entries.len());
        } else if self.refused_entries >= max {
            self.omitted += e.count;
            return;
        } else {
            self.refused_entries += 1;
        }
        self.index.insert(key, self.entries.len());
        self.entries.push(e);
    }
}

struct Shared {
    config: ProxyConfig,
    log: Mutex<Log>,
    /// Bytes relay buffers may still grow by, together.
    relay_budget: AtomicUsize,
    lookups: Semaphore,
}

impl Shared {
    fn refused(&self, e: NetworkEvent) {
        lock(&self.log).add(e, self.config.limits.max_events, false);
    }

    /// Logs an allowed request in progress; `None` when the log cannot take another allowed
    /// destination (then the request must be refused). Past the bound, a destination that
    /// already has an entry is still served, and counted there.
    fn admit(self: &Arc<Self>, id: u64, e: NetworkEvent) -> Option<LiveEntry> {
        let mut log = lock(&self.log);
        let reserved = log.allowed_entries + log.reserved < self.config.limits.max_events;
        let dest = (e.host.clone(), e.port, e.pattern.clone());
        if !reserved && !log.destinations.contains_key(&dest) {
            return None;
        }
        if reserved {
            log.reserved += 1;
        }
        let live = Arc::new(Live {
            event: Mutex::new(e),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
        });
        log.live.insert(id, live.clone());
        Some(LiveEntry {
            shared: self.clone(),
            id,
            live,
            reserved,
        })
    }

    fn log(&self) -> NetworkLog {
        let log = lock(&self.log);
        let mut events = log.entries.clone();
        events.extend(log.live.values().map(|l| l.snapshot()));
        NetworkLog {
            events,
            omitted: log.omitted,
        }
    }
}

/// An allowed request's log entry while it is in progress; folded into the log when dropped
/// (also when its task is cancelled because the proxy stops).
struct LiveEntry {
    shared: Arc<Shared>,
    id: u64,
    live: Arc<Live>,
    reserved: bool,
}

impl Drop for LiveEntry {
    fn drop(&mut self) {
        let mut e = self.live.snapshot();
        if e.address.is_none() && e.reason.is_none() {
            // Cancelled while resolving or connecting: the proxy stopped.
            e.reason = Some("the run ended before it connected".into());
        }
        let mut log = lock(&self.shared.log);
        log.live.remove(&self.id);
        if self.reserved {
            log.reserved -= 1;
        }
        log.add(e, self.shared.config.limits.max_events, self.reserved);
    }
}

/// The filtering proxy.
pub struct ProxyServer;

/// A running proxy; [`stop`](ProxyHandle::stop) (or dropping it) ends it.
pub struct ProxyHandle {
    shared: Arc<Shared>,
    stop: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHandle").finish_non_exhaustive()
    }
}

impl ProxyServer {
    /// Serves the proxy on `listener` (any bound, listening TCP socket, e.g. one made inside the
    /// sandbox's network namespace) until the handle is stopped. The listener is owned and closed by
    /// the proxy. Outgoing connections are made in the network namespace of the thread that calls
    /// this (the proxy's thread inherits it), and the address rules' "this host" is that
    /// namespace's.
    pub fn start(listener: std::net::TcpListener, config: ProxyConfig) -> io::Result<ProxyHandle> {
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared {
            relay_budget: AtomicUsize::new(config.limits.relay_memory),
            lookups: Semaphore::new(config.limits.max_lookups.max(1)),
            log: Mutex::new(Log::default()),
            config,
        });
        let (stop, stopped) = watch::channel(false);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("nanobox-proxy".into())
            .stack_size(STACK)
            .spawn(move || {
                runtime.block_on(accept_loop(s, listener, stopped));
                // Dropping the runtime cancels whatever is left (a resolver's tasks).
                drop(runtime);
            })?;
        Ok(ProxyHandle {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl ProxyHandle {
    /// Every request so far (requests in progress included, with their bytes so far).
    pub fn events(&self) -> Vec<NetworkEvent> {
        self.shared.log().events
    }

    /// The log so far: [`events`](ProxyHandle::events) and how many refusals it omits.
    pub fn log(&self) -> NetworkLog {
        self.shared.log()
    }

    /// Stops accepting, cancels every connection and lookup (closing every socket), joins the
    /// proxy's thread, and returns the final log.
    pub fn stop(mut self) -> NetworkLog {
        self.shutdown();
        self.shared.log()
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stopped: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    let mut next_id = 0u64;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            r = listener.accept() => r,
        };
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // e.g. EMFILE: the connection stays queued; try again shortly.
                tokio::select! {
                    biased;
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        if tasks.len() >= shared.config.limits.max_connections {
            let _ = stream.try_write(&error_response(
                503,
                "Service Unavailable",
                &format!(
                    "nanobox proxy: too many connections (the sandbox may hold {} at once)\n",
                    shared.config.limits.max_connections
                ),
            ));
            continue;
        }
        next_id += 1;
        tasks.spawn(connection(shared.clone(), stream, next_id));
    }
    drop(listener);
    tasks.shutdown().await;
}

async fn connection(shared: Arc<Shared>, mut client: TcpStream, id: u64) {
    let _ = client.set_nodelay(true);
    let _ = serve(&shared, &mut client, id).await;
}

/// Why a request ends in an error response.
struct Refusal {
    status: u16,
    body: String,
}

impl Refusal {
    fn new(status: u16, body: String) -> Self {
        Refusal { status, body }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            400 => "Bad Request",
            403 => "Forbidden",
            408 => "Request Timeout",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            _ => "Error",
        }
    }
}

fn bad_request(e: HeadError) -> Refusal {
    Refusal::new(400, format!("nanobox proxy: {e}\n"))
}

async fn serve(shared: &Arc<Shared>, client: &mut TcpStream, id: u64) -> io::Result<()> {
    let limits = &shared.config.limits;
    let read = read_head(client, Vec::new(), limits.max_head_bytes, |b| {
        parse_request_head(b, limits.max_header_lines)
    });
    let (req, leftover) = match timeout(limits.head_timeout, read).await {
        Ok(Ok(Some(x))) => x,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(r)) => return refuse(client, r).await,
        Err(_) => {
            let body = "nanobox proxy: timed out reading the request head\n".into();
            return refuse(client, Refusal::new(408, body)).await;
        }
    };
    let host = req.host.to_string();
    let Some(pattern) = shared.config.allow.allows_host(&req.host, req.port) else {
        shared.refused(NetworkEvent::new(
            &host,
            req.port,
            false,
            None,
            Some("not in the allowlist".into()),
        ));
        return refuse(client, not_allowed(shared, &host, req.port)).await;
    };
    let pattern = pattern.to_string();
    let admitted = shared.admit(
        id,
        NetworkEvent::new(&host, req.port, true, Some(pattern.clone()), None),
    );
    let Some(entry) = admitted else {
        shared.refused(NetworkEvent::new(
            &host,
            req.port,
            false,
            Some(pattern),
            Some("the network log is full".into()),
        ));
        let body = format!(
            "nanobox proxy: refused {host}:{}: the run's network log is full ({} distinct \
             destinations); nothing goes through unlogged.\n",
            req.port, limits.max_events
        );
        return refuse(client, Refusal::new(503, body)).await;
    };
    let live = &entry.live;

    // Resolve once, check every answer now, connect only to checked addresses.
    let addrs = match check_addresses(shared, &req.host, req.port).await {
        Ok(a) => a,
        Err(r) => {
            {
                let mut e = lock(&live.event);
                e.allowed = r.status != 403;
                e.reason = Some(r.log);
            }
            return refuse(client, Refusal::new(r.status, r.body)).await;
        }
    };

    let connected = match &shared.config.upstream {
        None => connect_any(shared, &addrs, req.port).await,
        Some(u) => connect_upstream(shared, u).await,
    };
    let (mut upstream, addr) = match connected {
        Ok(x) => x,
        Err(e) => {
            live.set_reason(format!("connect failed: {e}"));
            let body = format!(
                "nanobox proxy: cannot connect to {host}:{}: {e}\n",
                req.port
            );
            return refuse(client, Refusal::new(502, body)).await;
        }
    };
    let _ = upstream.set_nodelay(true);
    let checked = SocketAddr::new(addrs[0], req.port);
    lock(&live.event).address = Some(match &shared.config.upstream {
        None => addr.to_string(),
        Some(_) => checked.to_string(),
    });

    match (&req.target, &shared.config.upstream) {
        (Target::Connect, None) => {
            write_within(
                client,
                b"HTTP/1.1 200 Connection established\r\n\r\n",
                limits.idle_timeout,
            )
            .await?;
            tunnel(shared, client, &mut upstream, leftover, &req, live).await
        }
        (Target::Connect, Some(u)) => {
            let mut head = format!("CONNECT {checked} HTTP/1.1\r\nHost: {checked}\r\n");
            if let Some(a) = &u.authorization {
                head.push_str(&format!("Proxy-Authorization: {a}\r\n"));
            }
            head.push_str("\r\n");
            write_within(&mut upstream, head.as_bytes(), limits.idle_timeout).await?;
            let answer = timeout(
                limits.head_timeout,
                read_response_head(&mut upstream, limits.max_head_bytes),
            )
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")));
            let (status, rest) = match answer {
                Ok(x) => x,
                Err(e) => {
                    live.set_reason(format!("upstream proxy: {e}"));
                    let body = format!("nanobox proxy: upstream proxy failed: {e}\n");
                    return refuse(client, Refusal::new(502, body)).await;
                }
            };
            if !(200..300).contains(&status) {
                live.set_reason(format!("upstream proxy answered {status}"));
                let body = format!(
                    "nanobox proxy: the upstream proxy answered {status} to CONNECT {host}:{}\n",
                    req.port
                );
                return refuse(client, Refusal::new(502, body)).await;
            }
            write_within(
                client,
                b"HTTP/1.1 200 Connection established\r\n\r\n",
                limits.idle_timeout,
            )
            .await?;
            // What the upstream sent after its answer is the origin's.
            write_within(client, &rest, limits.idle_timeout).await?;
            live.down.fetch_add(rest.len() as u64, Ordering::Relaxed);
            tunnel(shared, client, &mut upstream, leftover, &req, live).await
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
            forward(
                shared,
                client,
                &mut upstream,
                &head,
                req.body,
                leftover,
                live,
            )
            .await
        }
    }
}

fn not_allowed(shared: &Shared, host: &str, port: u16) -> Refusal {
    let patterns = shared.config.allow.patterns();
    let list = if patterns.is_empty() {
        "(none)".to_string()
    } else {
        patterns.join(", ")
    };
    Refusal::new(
        403,
        format!(
            "nanobox proxy: {host}:{port} is not in the sandbox's network allowlist; the request \
             was refused.\nAllowed patterns: {list}\n"
        ),
    )
}

/// A refusal by the address rules or a failed lookup: `log` goes to the log, `body` to the
/// client (it never says what a name resolved to).
struct AddressRefusal {
    status: u16,
    log: String,
    body: String,
}

async fn check_addresses(
    shared: &Shared,
    host: &Host,
    port: u16,
) -> Result<Vec<IpAddr>, AddressRefusal> {
    let cfg = &shared.config;
    let (name, addrs) = match host {
        Host::Ip(ip) => (None, vec![*ip]),
        Host::Name(n) => match lookup(shared, &*cfg.resolver, n, port).await {
            Ok(a) => (Some(n.as_str()), a),
            Err(e) => {
                return Err(AddressRefusal {
                    status: 502,
                    log: format!("cannot resolve: {e}"),
                    body: format!("nanobox proxy: cannot resolve {n}\n"),
                })
            }
        },
    };
    for &addr in &addrs {
        let explicit = cfg.allow_addresses.iter().any(|c| c.contains(addr))
            || name.is_some_and(|n| cfg.resolver.pinned(n, addr));
        if explicit {
            continue;
        }
        let refused = match classify(addr) {
            Some(class) => Some(format!("{class} address {addr}")),
            None => match is_host_address(addr) {
                Ok(false) => None,
                Ok(true) => Some(format!("{addr} is an address of this host")),
                Err(e) => Some(format!(
                    "cannot tell whether {addr} is an address of this host: {e}"
                )),
            },
        };
        let Some(log) = refused else { continue };
        let what = match name {
            Some(n) => format!("{n} does not resolve to public addresses only"),
            None => format!("{addr} is not a public address of another host"),
        };
        return Err(AddressRefusal {
            status: 403,
            log,
            body: format!(
                "nanobox proxy: refused {host}:{port} by the sandbox's address rules: {what}. \
                 Loopback, private, link-local, special-purpose and this host's own addresses are \
                 refused unless allowed explicitly (allow_address); the run's network log names \
                 the address.\n"
            ),
        });
    }
    Ok(addrs)
}

/// Resolves `name` within the lookup bound and the resolve timeout.
async fn lookup(
    shared: &Shared,
    resolver: &dyn Resolver,
    name: &str,
    port: u16,
) -> io::Result<Vec<IpAddr>> {
    let _permit = shared
        .lookups
        .acquire()
        .await
        .map_err(|_| io::Error::other("proxy stopping"))?;
    match timeout(
        shared.config.limits.resolve_timeout,
        resolver.resolve(name, port),
    )
    .await
    {
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
        Ok(Ok(a)) if a.is_empty() => Err(io::Error::new(io::ErrorKind::NotFound, "no address")),
        Ok(r) => r,
    }
}

/// Connects to the first of the checked `addrs` that answers.
async fn connect_any(
    shared: &Shared,
    addrs: &[IpAddr],
    port: u16,
) -> io::Result<(TcpStream, SocketAddr)> {
    let addrs: Vec<SocketAddr> = addrs.iter().map(|&a| SocketAddr::new(a, port)).collect();
    connect_sockets(shared, &addrs).await
}

async fn connect_upstream(
    shared: &Shared,
    u: &super::Upstream,
) -> io::Result<(TcpStream, SocketAddr)> {
    let ips = match u.host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => lookup(shared, &SystemResolver::new(), &u.host, u.port).await?,
    };
    let addrs: Vec<SocketAddr> = ips
        .into_iter()
        .map(|a| SocketAddr::new(a, u.port))
        .collect();
    connect_sockets(shared, &addrs).await
}

async fn connect_sockets(
    shared: &Shared,
    addrs: &[SocketAddr],
) -> io::Result<(TcpStream, SocketAddr)> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for &a in addrs {
        match timeout(shared.config.limits.connect_timeout, TcpStream::connect(a)).await {
            Ok(Ok(s)) => return Ok((s, a)),
            Ok(Err(e)) => last = e,
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        }
    }
    Err(last)
}

/// Reads a request head that starts with `buf`, within `max_bytes`. `Ok(None)`: the client left
/// before sending anything.
async fn read_head<T>(
    client: &mut TcpStream,
    mut buf: Vec<u8>,
    max_bytes: usize,
    parse: impl Fn(&[u8]) -> Result<T, HeadError>,
) -> Result<Option<(T, Vec<u8>)>, Refusal> {
    let mut scanned: usize = 0;
    loop {
        if cannot_start_a_request(&buf) {
            // Not HTTP: say so now rather than wait for a blank line that may never come.
            return Err(bad_request(HeadError::Malformed(
                "this is not an HTTP request".into(),
            )));
        }
        let from = scanned.saturating_sub(3);
        let upto = buf.len().min(max_bytes);
        if let Some(end) = head_end(&buf[from..upto]).map(|e| e + from) {
            let head = parse(&buf[..end]).map_err(bad_request)?;
            return Ok(Some((head, buf[end..].to_vec())));
        }
        if buf.len() >= max_bytes {
            return Err(bad_request(HeadError::TooLarge(max_bytes)));
        }
        scanned = buf.len();
        let mut chunk = vec![0u8; (max_bytes - buf.len()).min(4096)];
        match client.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => {
                return Err(Refusal::new(
                    400,
                    "nanobox proxy: incomplete request head\n".into(),
                ))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(None),
        }
    }
}

/// Reads an upstream proxy's response head; returns its status and the bytes after it.
async fn read_response_head(s: &mut TcpStream, max: usize) -> io::Result<(u16, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await?;
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

async fn write_within<W: AsyncWrite + Unpin>(
    s: &mut W,
    data: &[u8],
    limit: Duration,
) -> io::Result<()> {
    match timeout(limit, s.write_all(data)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

/// Sends an error response, then reads and drops a bounded amount of what the client still sends
/// before closing, so that the close does not reset the connection under the client's read.
async fn refuse(client: &mut TcpStream, r: Refusal) -> io::Result<()> {
    let resp = error_response(r.status, r.reason(), &r.body);
    write_within(client, &resp, REFUSE_TIME).await?;
    drain(client).await;
    Ok(())
}

/// Half-closes `client`, then reads and drops what it still sends (bounded in bytes and time), so
/// that closing does not reset the connection before the client has read our answer.
async fn drain(client: &mut TcpStream) {
    let _ = client.shutdown().await;
    let _ = timeout(DRAIN_TIME, async {
        let mut drained = 0u64;
        let mut buf = [0u8; 8192];
        while drained < DRAIN_BYTES {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n as u64,
            }
        }
    })
    .await;
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

/// How one direction of a relay ended.
#[derive(PartialEq, Eq)]
enum End {
    /// The sender closed its side; the half-close was passed on.
    Eof,
    /// An error or the idle timeout: the whole connection ends.
    Abort,
}

/// Copies `from` → `to` until EOF (then half-closes `to`), an error, or the idle timeout. Counts
/// into `counter`.
async fn pump(
    from: &mut ReadHalf<'_>,
    to: &mut WriteHalf<'_>,
    activity: &Activity,
    counter: &AtomicU64,
    budget: &AtomicUsize,
) -> End {
    let mut buf = RelayBuf::new(budget);
    loop {
        let mut n = match timeout(activity.idle, from.read(&mut buf.buf)).await {
            Err(_) if activity.idle_expired() => return End::Abort,
            Err(_) => continue,
            Ok(Ok(0)) => {
                let _ = to.shutdown().await;
                return End::Eof;
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(Err(_)) => return End::Abort,
        };
        // Take what else has arrived already, without waiting: fewer, larger writes (and a full
        // buffer grows).
        let mut eof = false;
        while n < buf.buf.len() {
            match from.try_read(&mut buf.buf[n..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break, // WouldBlock, or an error the next read reports
            }
        }
        activity.touch();
        if write_within(to, &buf.buf[..n], activity.idle)
            .await
            .is_err()
        {
            return End::Abort;
        }
        counter.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
        if eof {
            let _ = to.shutdown().await;
            return End::Eof;
        }
        buf.filled(n);
    }
}

/// Relays both ways until both sides closed, an error, or the idle timeout.
async fn relay(
    shared: &Shared,
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    first: &[u8],
    live: &Live,
) -> io::Result<()> {
    let activity = Activity::new(shared.config.limits.idle_timeout);
    if !first.is_empty() {
        write_within(upstream, first, activity.idle).await?;
        live.up.fetch_add(first.len() as u64, Ordering::Relaxed);
    }
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let budget = &shared.relay_budget;
    let up = pump(&mut cr, &mut uw, &activity, &live.up, budget);
    let down = pump(&mut ur, &mut cw, &activity, &live.down, budget);
    tokio::pin!(up, down);
    tokio::select! {
        end = &mut up => if end == End::Eof { down.await; },
        end = &mut down => if end == End::Eof { up.await; },
    }
    Ok(())
}

/// Whether `b` (at least 3 bytes) starts a TLS handshake record.
fn is_tls(b: &[u8]) -> bool {
    b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04
}

/// A tunnel: TLS is relayed as it is; anything else must be one plain-HTTP request for the
/// tunnel's own host (see step 6 in the module documentation).
async fn tunnel(
    shared: &Shared,
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    mut first: Vec<u8>,
    req: &RequestHead,
    live: &Live,
) -> io::Result<()> {
    let limits = &shared.config.limits;
    let activity = Activity::new(limits.idle_timeout);
    while first.len() < 3 {
        let mut b = [0u8; 4096];
        match timeout(activity.idle, client.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                if !first.is_empty() {
                    live.set_reason("the tunnel carried neither TLS nor HTTP".into());
                }
                return Ok(());
            }
            Ok(Ok(n)) => first.extend_from_slice(&b[..n]),
        }
    }
    if is_tls(&first) {
        return relay(shared, client, upstream, &first, live).await;
    }
    let read = read_head(client, first, limits.max_head_bytes, |b| {
        parse_tunneled_head(b, limits.max_header_lines)
    });
    let (inner, leftover) = match timeout(limits.head_timeout, read).await {
        Ok(Ok(Some(x))) => x,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(r)) => {
            live.set_reason(format!(
                "the tunnel carried neither TLS nor a valid HTTP request: {}",
                r.body.trim_end()
            ));
            return refuse(client, r).await;
        }
        Err(_) => {
            let body = "nanobox proxy: timed out reading the request head\n".into();
            return refuse(client, Refusal::new(408, body)).await;
        }
    };
    let same_port = !inner.explicit_port || inner.head.port == req.port;
    if inner.head.host != req.host || !same_port {
        let named = inner.head.authority.clone();
        live.set_reason(format!("a request inside named another host ({named})"));
        let inner_host = inner.head.host.to_string();
        let port = if inner.explicit_port {
            inner.head.port
        } else {
            req.port
        };
        shared.refused(NetworkEvent::new(
            &inner_host,
            port,
            false,
            None,
            Some(format!(
                "requested inside a tunnel to {}:{}",
                req.host, req.port
            )),
        ));
        let body = format!(
            "nanobox proxy: refused a request for {named} inside a tunnel to {}:{}: a tunnel \
             carries requests for its own host only.\n",
            req.host, req.port
        );
        return refuse(client, Refusal::new(403, body)).await;
    }
    let Target::Forward { path } = &inner.head.target else {
        unreachable!("a tunneled request is origin-form");
    };
    let head = forward_head(&inner.head, path, &[]);
    forward(
        shared,
        client,
        upstream,
        &head,
        inner.head.body,
        leftover,
        live,
    )
    .await
}

/// Sends one plain-HTTP request (head, then exactly its body) while relaying the response back,
/// then closes: a request that follows on the same client connection is never forwarded.
async fn forward(
    shared: &Shared,
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    head: &[u8],
    body: Body,
    leftover: Vec<u8>,
    live: &Live,
) -> io::Result<()> {
    let activity = Activity::new(shared.config.limits.idle_timeout);
    {
        let (mut cr, mut cw) = client.split();
        let (mut ur, mut uw) = upstream.split();
        let down = pump(
            &mut ur,
            &mut cw,
            &activity,
            &live.down,
            &shared.relay_budget,
        );
        let max_trailers = shared.config.limits.max_head_bytes;
        let mut source = BodySource {
            client: &mut cr,
            upstream: &mut uw,
            pending: leftover,
            pos: 0,
            activity: &activity,
            counter: &live.up,
        };
        let send = async move {
            source.send(head).await?;
            match body {
                Body::None => Ok(()),
                Body::Length(n) => source.copy(n).await,
                Body::Chunked => source.chunked(max_trailers).await,
            }
        };
        tokio::pin!(down, send);
        tokio::select! {
            sent = &mut send => if sent.is_ok() { (&mut down).await; },
            _ = &mut down => {}
        }
    }
    drain(client).await;
    Ok(())
}

/// The request body, read from what followed the head and then from the client.
struct BodySource<'a, R, W> {
    client: &'a mut R,
    upstream: &'a mut W,
    pending: Vec<u8>,
    pos: usize,
    activity: &'a Activity,
    counter: &'a AtomicU64,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> BodySource<'_, R, W> {
    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        write_within(self.upstream, data, self.activity.idle).await?;
        self.counter.fetch_add(data.len() as u64, Ordering::Relaxed);
        self.activity.touch();
        Ok(())
    }

    /// Makes unread bytes available (reading from the client when none are pending).
    async fn fill(&mut self) -> io::Result<()> {
        if self.pos < self.pending.len() {
            return Ok(());
        }
        self.pending.resize(RELAY_BUF, 0);
        self.pos = 0;
        loop {
            match timeout(self.activity.idle, self.client.read(&mut self.pending)).await {
                Ok(Ok(0)) => {
                    self.pending.clear();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "body cut short",
                    ));
                }
                Ok(Ok(n)) => {
                    self.pending.truncate(n);
                    self.activity.touch();
                    return Ok(());
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) if !self.activity.idle_expired() => {}
                Ok(Err(e)) => {
                    self.pending.clear();
                    return Err(e);
                }
                Err(_) => {
                    self.pending.clear();
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "idle"));
                }
            }
        }
    }

    async fn copy(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            self.fill().await?;
            let avail = &self.pending[self.pos..];
            let take = avail.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let chunk = avail[..take].to_vec();
            self.pos += take;
            self.send(&chunk).await?;
            n -= take as u64;
        }
        Ok(())
    }

    /// One line through CRLF, forwarded; at most `max` bytes.
    async fn line(&mut self, max: usize) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            self.fill().await?;
            let b = self.pending[self.pos];
            self.pos += 1;
            line.push(b);
            if line.ends_with(b"\r\n") {
                self.send(&line).await?;
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

    async fn chunked(&mut self, max_trailers: usize) -> io::Result<()> {
        let invalid = || io::Error::new(io::ErrorKind::InvalidData, "malformed chunked body");
        loop {
            let line = self.line(4096).await?;
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
                    let t = self.line(max_trailers).await?;
                    total += t.len();
                    if t == b"\r\n" {
                        return Ok(());
                    }
                    if total > max_trailers {
                        return Err(invalid());
                    }
                }
            }
            self.copy(size).await?;
            if self.line(2).await? != b"\r\n" {
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

    fn event(host: &str, allowed: bool, reason: Option<&str>) -> NetworkEvent {
        let mut e = NetworkEvent::new(host, 443, allowed, None, reason.map(String::from));
        e.bytes_up = 10;
        e
    }

    #[test]
    fn the_log_aggregates_repeats_and_counts_what_it_omits() {
        let mut log = Log::default();
        for _ in 0..1000 {
            log.add(
                event("a.test", false, Some("not in the allowlist")),
                3,
                false,
            );
        }
        for h in ["b.test", "c.test", "d.test", "e.test"] {
            log.add(event(h, false, Some("not in the allowlist")), 3, false);
        }
        assert_eq!(log.entries.len(), 3, "a.test, b.test, c.test");
        assert_eq!(log.entries[0].count, 1000);
        assert_eq!(log.entries[0].bytes_up, 10_000);
        assert_eq!(log.omitted, 2, "d.test and e.test");
        // repeats of a kept entry still count
        log.add(
            event("b.test", false, Some("not in the allowlist")),
            3,
            false,
        );
        assert_eq!((log.entries[1].count, log.omitted), (2, 2));
        // an allowed entry is never omitted (its room was reserved when it was admitted)
        log.add(event("f.test", true, None), 3, true);
        assert_eq!(log.entries.len(), 4);
        assert!(log.entries[3].allowed);
        // past the bound, a request to a known destination that differs (another address)
        // counts in the destination's first entry
        for (i, h) in ["g.test", "h.test"].into_iter().enumerate() {
            log.add(event(h, true, None), 3, true);
            assert_eq!(log.entries.len(), 5 + i);
        }
        let mut other = event("f.test", true, None);
        other.address = Some("192.0.2.9:443".into());
        log.add(other, 3, false);
        assert_eq!(log.entries.len(), 6);
        assert_eq!((log.entries[3].count, log.entries[3].bytes_up), (2, 20));
    }
}
