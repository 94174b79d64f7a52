//! Helpers for the proxy tests: origins on 127.0.0.1 and a client.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nanobox::proxy::{AllowList, OverrideResolver, ProxyConfig, ProxyHandle, ProxyServer};

pub const LO: &str = "127.0.0.1";

/// The first bytes of a TLS handshake record: the proxy relays a tunnel as it is only when the
/// client's first bytes are TLS (anything else must be one HTTP request for the tunnel's host).
pub const TLS_START: &[u8] = b"\x16\x03\x01";

/// `msg` after [`TLS_START`], as a client's first bytes in a tunnel.
pub fn tls(msg: &[u8]) -> Vec<u8> {
    [TLS_START, msg].concat()
}

pub fn lo() -> IpAddr {
    LO.parse().unwrap()
}

/// A test origin: accepts until stopped, one thread per connection running `serve`.
pub struct Origin {
    pub addr: SocketAddr,
    pub active: Arc<AtomicUsize>,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Origin {
    pub fn start(serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Origin {
        Origin::start_at(SocketAddr::new(lo(), 0), serve)
    }

    /// Like [`Origin::start`], listening on `bind` (e.g. `[::]:0`, every address of the host).
    pub fn start_at(bind: SocketAddr, serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Origin {
        let l = TcpListener::bind(bind).unwrap();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let serve = Arc::new(serve);
        let (s2, a2, c2) = (stop.clone(), active.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            for c in l.incoming() {
                if s2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(c) = c else { continue };
                c2.fetch_add(1, Ordering::SeqCst);
                a2.fetch_add(1, Ordering::SeqCst);
                let (serve, a3) = (serve.clone(), a2.clone());
                conns.push(std::thread::spawn(move || {
                    serve(c);
                    a3.fetch_sub(1, Ordering::SeqCst);
                }));
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Origin {
            addr,
            active,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    /// Echoes until EOF, then half-closes (so a client's half-close comes back as EOF).
    pub fn echo() -> Origin {
        Origin::echo_at(SocketAddr::new(lo(), 0))
    }

    /// [`Origin::echo`] listening on `bind`.
    pub fn echo_at(bind: SocketAddr) -> Origin {
        Origin::start_at(bind, |mut c| {
            let mut buf = [0u8; 16384];
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if c.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = c.shutdown(Shutdown::Write);
        })
    }

    /// Reads one request head (and a body of `Content-Length`), records the bytes it got until the
    /// client stopped sending for 300 ms, answers `200 ok`.
    pub fn http(seen: Arc<Mutex<Vec<Vec<u8>>>>) -> Origin {
        Origin::start(move |mut c| {
            c.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            seen.lock().unwrap().push(got);
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let wake = match self.addr.ip() {
            ip if ip.is_unspecified() => SocketAddr::new(lo(), self.addr.port()),
            _ => self.addr,
        };
        let _ = TcpStream::connect(wake);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn config(patterns: &[&str], names: &[&str]) -> ProxyConfig {
    let mut r = OverrideResolver::default();
    for n in names {
        r = r.map(n, lo()).unwrap();
    }
    let mut c = ProxyConfig::new(AllowList::parse(patterns).unwrap());
    c.resolver = Arc::new(r);
    c
}

pub fn start(config: ProxyConfig) -> (ProxyHandle, SocketAddr) {
    let l = TcpListener::bind((LO, 0)).unwrap();
    let addr = l.local_addr().unwrap();
    (ProxyServer::start(l, config).unwrap(), addr)
}

/// Reads a response head byte by byte (so nothing after it is consumed).
pub fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Sends `CONNECT target` and returns the stream and the response head.
pub fn connect(proxy: SocketAddr, target: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").unwrap();
    let head = read_head(&mut s);
    (s, head)
}

/// Sends raw bytes, returns everything the proxy answers until it closes.
pub fn exchange(proxy: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Threads of this process whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|c| c.starts_with(prefix))
        .count()
}

pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

pub fn task_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A test CA and a server certificate for `name` in `dir` (`ca.pem`, `srv.pem`, `srv.key`), made
/// with the openssl command; false when openssl is missing or fails.
pub fn make_test_certs(dir: &std::path::Path, name: &str) -> bool {
    use std::process::{Command, Stdio};
    let ok = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    std::fs::write(dir.join("ext.cnf"), format!("subjectAltName=DNS:{name}\n")).unwrap();
    ok(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=nanobox test CA",
    ]) && ok(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        &format!("/CN={name}"),
    ]) && ok(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ])
}

/// `openssl s_server -www` with the certificates of [`make_test_certs`] in `dir`, on a free
/// loopback port, killed on drop.
pub struct TlsOrigin {
    child: std::process::Child,
    pub port: u16,
}

impl TlsOrigin {
    pub fn start(dir: &std::path::Path) -> TlsOrigin {
        use std::process::{Command, Stdio};
        let port = TcpListener::bind((LO, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args([
                "s_server", "-quiet", "-www", "-cert", "srv.pem", "-key", "srv.key",
            ])
            .arg("-accept")
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        while TcpStream::connect((LO, port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "s_server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsOrigin { child, port }
    }
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A nameserver on loopback that reads queries and never answers; records when each came.
pub struct StalledNameserver {
    pub addr: std::net::SocketAddr,
    arrivals: Arc<Mutex<Vec<std::time::Instant>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StalledNameserver {
    /// Listening on `bind` (e.g. `127.0.0.1:0`, or port 53 in a namespace of a test's own).
    pub fn start(bind: &str) -> Self {
        let sock = std::net::UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (a, s) = (arrivals.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                if sock.recv_from(&mut buf).is_ok() {
                    a.lock().unwrap().push(std::time::Instant::now());
                }
            }
        });
        StalledNameserver {
            addr,
            arrivals,
            stop,
            thread: Some(thread),
        }
    }
    pub fn queries(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }
    pub fn queries_after(&self, t: std::time::Instant) -> usize {
        self.arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|a| **a > t)
            .count()
    }
}

impl Drop for StalledNameserver {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
