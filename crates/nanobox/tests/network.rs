//! The network allowlist end to end: real clients inside the sandbox (curl, python3 urllib, pip)
//! reach origins that these tests start on the host's 127.0.0.1, through the filtering proxy,
//! with names mapped by `map_host`. Hermetic: nothing but loopback is ever contacted.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;
mod proxy_util;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TempDir;
use nanobox::{Outcome, Permission, RunResult, Sandbox, SandboxBuilder};
use proxy_util::{make_test_certs, read_head, Origin, TlsOrigin};

fn lo() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// An origin answering every request with `body` (HTTP/1.1, Connection: close).
fn origin(body: &'static str) -> Origin {
    Origin::start(move |mut c| {
        let _ = read_head(&mut c);
        let _ = write!(
            c,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    })
}

fn run(b: SandboxBuilder, script: &str) -> RunResult {
    let r = b
        .wall_time_limit(Duration::from_secs(60))
        .build()
        .unwrap()
        .run("sh", &["-c", script])
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    r
}

both!(an_allowed_name_reaches_its_origin_with_curl_and_python, {
    let o = origin("hello from origin");
    let p = o.port();
    let b = Sandbox::builder()
        .allow_network(&[format!("api.test:{p}")])
        .map_host("api.test", lo());
    let r = run(
        b,
        &format!(
            "curl -sS http://api.test:{p}/x; echo; \
             python3 -c \"import urllib.request as u; print(u.urlopen('http://api.test:{p}/y').read().decode())\""
        ),
    );
    assert_eq!(r.stdout, "hello from origin\nhello from origin\n", "{r:?}");
    // two alike requests: one entry, counted twice
    assert_eq!(r.network.len(), 1, "{:?}", r.network);
    assert_eq!(r.network[0].count, 2, "{:?}", r.network);
    assert_eq!(r.network_omitted, 0);
    for e in &r.network {
        assert!(e.allowed && e.host == "api.test" && e.port == p, "{e:?}");
        assert!(e.bytes_down > 0 && e.bytes_up > 0, "{e:?}");
    }
});

both!(other_names_get_a_403_naming_them, {
    let o = origin("secret");
    let p = o.port();
    let b = Sandbox::builder()
        .allow_network(&[format!("api.test:{p}")])
        .map_host("api.test", lo())
        .map_host("other.test", lo());
    let r = run(
        b,
        &format!(
            "curl -sS -o /tmp/body -w '%{{http_code}}\\n' http://other.test:{p}/; \
             curl -sS -o /dev/null -w '%{{http_connect}}\\n' https://other.test/; cat /tmp/body"
        ),
    );
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("403"), "{}", r.stdout);
    // HTTPS: the CONNECT itself is refused.
    assert_eq!(lines.next(), Some("403"), "{}", r.stdout);
    let body: String = lines.collect::<Vec<_>>().join("\n");
    assert!(
        body.contains("other.test") && body.contains("allowlist"),
        "{body}"
    );
    assert!(!r.stdout.contains("secret"));
    assert!(r.network.iter().all(|e| !e.allowed), "{:?}", r.network);
    assert_eq!(o.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
});

both!(connections_that_bypass_the_proxy_fail, {
    let o = origin("secret");
    let p = o.port();
    let b = Sandbox::builder()
        .allow_network(&[format!("api.test:{p}")])
        .map_host("api.test", lo());
    // Straight to the origin's port (the sandbox's own loopback has nothing there), and to the
    // host's addresses, which the sandbox's network namespace has no route to.
    let host_ips: Vec<String> = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut script = format!(
        "curl -sS -m 3 --noproxy '*' http://127.0.0.1:{p}/ && echo BYPASSED; \
         python3 -c \"import socket; s=socket.socket(); s.settimeout(3); s.connect(('127.0.0.1', {p})); print('BYPASSED')\"; "
    );
    for ip in &host_ips {
        script.push_str(&format!(
            "curl -sS -m 3 --noproxy '*' http://{ip}:{p}/ && echo BYPASSED; "
        ));
    }
    script.push_str("true");
    let r = run(b, &script);
    assert!(!r.stdout.contains("BYPASSED"), "{r:?}");
    assert_eq!(o.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(r.network.is_empty(), "{:?}", r.network);
});

both!(ip_literals_loopback_names_and_cloud_metadata_are_refused, {
    let o = origin("secret");
    let p = o.port();
    let b = Sandbox::builder().allow_network(&[
        format!("localhost:{p}"),
        "169.254.169.254".to_string(),
        format!("127.0.0.1:{p}"),
    ]);
    let r = run(
        b,
        &format!(
            "for u in http://127.0.0.2:{p}/ http://localhost:{p}/ http://169.254.169.254/latest/meta-data/ http://127.0.0.1:{p}/; do \
               curl -sS -o /dev/null -w '%{{http_code}}\\n' --noproxy '' --proxy http://127.0.0.1:3128 $u; done"
        ),
    );
    // Not listed; a name resolving to loopback; metadata listed literally; loopback listed but
    // not allowed as an address: all refused.
    assert_eq!(r.stdout, "403\n403\n403\n403\n", "{r:?}");
    assert_eq!(o.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    let reasons: Vec<String> = r
        .network
        .iter()
        .map(|e| e.reason.clone().unwrap_or_default())
        .collect();
    assert!(reasons[0].contains("not in the allowlist"), "{reasons:?}");
    assert!(reasons[1].contains("loopback"), "{reasons:?}");
    assert!(reasons[2].contains("link-local"), "{reasons:?}");
});

both!(
    wildcards_match_subdomains_at_any_depth_but_not_the_domain,
    {
        let o = origin("ok");
        let p = o.port();
        let mut b = Sandbox::builder().allow_network(&[format!("*.svc.test:{p}")]);
        for n in ["a.svc.test", "b.c.svc.test", "svc.test", "xsvc.test"] {
            b = b.map_host(n, lo());
        }
        let r = run(
            b,
            &format!(
                "for h in a.svc.test B.C.SVC.TEST. svc.test xsvc.test; do \
               curl -sS -o /dev/null -w \"$h %{{http_code}}\\n\" http://$h:{p}/; done"
            ),
        );
        assert_eq!(
            r.stdout, "a.svc.test 200\nB.C.SVC.TEST. 200\nsvc.test 403\nxsvc.test 403\n",
            "{r:?}"
        );
    }
);

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16) {
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {port}");
}

both!(https_through_the_proxy_with_a_test_ca, {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipped: openssl is not installed (apt-get install openssl)");
        return;
    }
    let d = TempDir::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(make_test_certs(d.path(), "secure.test"), "openssl failed");
    for f in ["ca.pem", "srv.pem", "srv.key"] {
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let srv = TlsOrigin::start(d.path());
    let port = srv.port;
    let b = Sandbox::builder()
        .mount(d.path(), "/ca", Permission::ReadOnly)
        .allow_network(&[format!("secure.test:{port}")])
        .map_host("secure.test", lo());
    let r = run(
        b,
        &format!(
            "curl -sS --cacert /ca/ca.pem -o /dev/null -w '%{{http_code}}\\n' https://secure.test:{port}/; \
             python3 -c \"import ssl, urllib.request as u; c=ssl.create_default_context(cafile='/ca/ca.pem'); print(u.urlopen('https://secure.test:{port}/', context=c).status)\""
        ),
    );
    // TLS end to end through the tunnel: the certificate checks against the test CA.
    assert_eq!(r.stdout, "200\n200\n", "{r:?}");
    assert!(r.network.iter().all(|e| e.allowed), "{:?}", r.network);
});

/// A wheel pip accepts: METADATA, WHEEL, RECORD.
fn write_wheel(path: &Path) {
    let py = format!(
        "import zipfile\n\
with zipfile.ZipFile('{}', 'w') as z:\n\
\x20   z.writestr('demo/__init__.py', 'X = 1\\n')\n\
\x20   z.writestr('demo-1.0.dist-info/METADATA', 'Metadata-Version: 2.1\\nName: demo\\nVersion: 1.0\\n')\n\
\x20   z.writestr('demo-1.0.dist-info/WHEEL', 'Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n\
\x20   z.writestr('demo-1.0.dist-info/RECORD', '')\n",
        path.display()
    );
    let ok = Command::new("python3").args(["-c", &py]).status().unwrap();
    assert!(ok.success());
}

both!(pip_downloads_from_a_local_index_through_the_proxy, {
    if !Command::new("/usr/bin/python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipped: Debian's python3-pip is not installed (apt-get install python3-pip)");
        return;
    }
    let d = TempDir::new();
    use std::os::unix::fs::PermissionsExt;
    let simple = d.join("simple/demo");
    std::fs::create_dir_all(&simple).unwrap();
    write_wheel(&d.join("simple/demo/demo-1.0-py3-none-any.whl"));
    std::fs::write(
        simple.join("index.html"),
        "<html><body><a href=\"demo-1.0-py3-none-any.whl\">demo-1.0-py3-none-any.whl</a></body></html>",
    )
    .unwrap();
    for p in [d.path().to_path_buf(), d.join("simple"), simple.clone()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let port = free_port();
    let _srv = Server(
        Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(d.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port);
    let b = Sandbox::builder()
        .allow_network(&[format!("pypi.test:{port}")])
        .map_host("pypi.test", lo());
    let r = run(
        b,
        &format!(
            "/usr/bin/python3 -m pip download --no-deps --disable-pip-version-check -q \
               --trusted-host pypi.test --index-url http://pypi.test:{port}/simple/ demo -d /tmp/dl && ls /tmp/dl"
        ),
    );
    assert_eq!(r.stdout, "demo-1.0-py3-none-any.whl\n", "{r:?}");
    assert!(r.network.iter().any(|e| e.allowed && e.host == "pypi.test"));
});

/// A minimal upstream proxy for plain HTTP: records each request head, forwards it to the
/// absolute-form target in origin-form, relays the answer.
fn upstream(seen: Arc<Mutex<Vec<String>>>) -> Origin {
    Origin::start(move |mut c| {
        let head = read_head(&mut c);
        seen.lock().unwrap().push(head.clone());
        let line = head.lines().next().unwrap_or_default().to_string();
        let target = line.split(' ').nth(1).unwrap_or_default();
        let Some(rest) = target.strip_prefix("http://") else {
            return;
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let Ok(mut up) = TcpStream::connect(authority) else {
            return;
        };
        let _ = write!(
            up,
            "GET {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n",
            if path.is_empty() { "/" } else { path }
        );
        let mut answer = Vec::new();
        let _ = up.read_to_end(&mut answer);
        let _ = c.write_all(&answer);
        let _ = c.shutdown(Shutdown::Write);
    })
}

both!(requests_chain_through_an_upstream_proxy, {
    let o = origin("via upstream");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let up = upstream(seen.clone());
    let p = o.port();
    let b = Sandbox::builder()
        .allow_network(&[format!("api.test:{p}")])
        .map_host("api.test", lo())
        .upstream_proxy(format!("http://127.0.0.1:{}", up.port()));
    let r = run(
        b,
        &format!("curl -sS http://api.test:{p}/a; echo; curl -sS -o /dev/null -w '%{{http_code}}' http://no.test:{p}/"),
    );
    assert_eq!(r.stdout, "via upstream\n403", "{r:?}");
    let seen = seen.lock().unwrap();
    // Only the allowed request reached the upstream, addressed to the checked address.
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with(&format!("GET http://127.0.0.1:{p}/a ")),
        "{seen:?}"
    );
});

#[test]
fn invalid_patterns_and_the_degraded_mode_are_refused() {
    let e = Sandbox::builder()
        .allow_network(&["exa mple.com"])
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("exa mple.com"), "{e}");
    let e = Sandbox::builder()
        .allow_network(&["a.test"])
        .allow_address("10.0.0.0/99")
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("allow_address"), "{e}");
}

both!(
    the_log_keeps_every_allowed_request_and_says_when_it_left_refusals_out,
    {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let o = proxy_util::Origin::http(seen.clone());
        let p = o.port();
        let b = Sandbox::builder()
            .allow_network(&[format!("api.test:{p}")])
            .map_host("api.test", lo())
            .wall_time_limit(Duration::from_secs(120));
        // 10,001 distinct refused names (one past the log's bound), the first three twice, then
        // one allowed request that carries data out.
        let script = format!(
            r#"python3 - <<'PY'
import socket
for i in range(10001):
    for _ in range(2 if i < 3 else 1):
        s = socket.create_connection(("127.0.0.1", 3128))
        s.sendall(b"CONNECT h%d.test:443 HTTP/1.1\r\n\r\n" % i)
        s.recv(4096)
        s.close()
PY
head -c 5000 /dev/zero | tr '\0' s > /tmp/secret
curl -sS -H 'Expect:' --data-binary @/tmp/secret http://api.test:{p}/upload"#
        );
        let r = b.build().unwrap().run("sh", &["-c", &script]).unwrap();
        // (the result holds 10,000 entries: only what matters is printed)
        assert_eq!(
            (&r.outcome, r.stdout.as_str()),
            (&Outcome::Exited(0), "ok"),
            "{}",
            r.stderr
        );
        let got = seen.lock().unwrap().concat();
        assert!(got.ends_with(&[b's'; 5000]), "the data reached the origin");
        let refused: Vec<_> = r.network.iter().filter(|e| !e.allowed).collect();
        assert_eq!(
            refused.len(),
            10_000,
            "the log's bound of distinct refusals"
        );
        assert_eq!(
            r.network_omitted, 1,
            "the refusal past the bound is counted"
        );
        assert_eq!(refused[0].count, 2, "repeats are one entry");
        let allowed: Vec<_> = r.network.iter().filter(|e| e.allowed).collect();
        assert_eq!(allowed.len(), 1, "{allowed:?}");
        assert!(allowed[0].bytes_up > 5000, "{:?}", allowed[0]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["network_truncated"], true);
        assert_eq!(json["network_omitted"], 1);
    }
);

both!(a_tunnel_carries_requests_for_its_own_host_only, {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let o = proxy_util::Origin::http(seen.clone());
    let p = o.port();
    let b = Sandbox::builder()
        .allow_network(&[format!("api.test:{p}")])
        .map_host("api.test", lo());
    // curl --proxytunnel sends plain HTTP inside CONNECT; the second names another virtual host
    // of the same server.
    let r = run(
        b,
        &format!(
            "curl -sS -p -o /dev/null -w '%{{http_code}}\\n' http://api.test:{p}/a; \
             curl -sS -p -w '\\n%{{http_code}}\\n' -H 'Host: internal.test' http://api.test:{p}/b"
        ),
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "200", "{r:?}");
    assert_eq!(lines.last(), Some(&"403"), "{r:?}");
    assert!(
        r.stdout
            .contains("refused a request for internal.test inside a tunnel"),
        "{r:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let heads: Vec<String> = seen
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .filter(|h| !h.is_empty())
        .collect();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(heads[0].starts_with("GET /a HTTP/1.1\r\n"), "{heads:?}");
    assert!(
        !heads.iter().any(|h| h.contains("internal.test")),
        "{heads:?}"
    );
    let other = r
        .network
        .iter()
        .find(|e| e.host == "internal.test")
        .unwrap_or_else(|| panic!("the other host is in the log: {:?}", r.network));
    assert!(!other.allowed);
    assert_eq!(
        other.reason.as_deref(),
        Some(format!("requested inside a tunnel to api.test:{p}").as_str())
    );
});

/// Runs `name` (an ignored test of this binary) in a mount and network namespace of its own, as
/// root (it binds port 53 there and mounts over /etc/resolv.conf, which only root may).
fn rerun_in_own_namespaces(name: &str) {
    common::rerun_under(
        &["unshare", "--mount", "--net", "--"],
        &std::env::current_exe().unwrap(),
        name,
        "NANOBOX_TEST_NETNS",
        "in namespaces of its own",
    );
}

#[test]
fn a_stalled_nameserver_does_not_keep_a_run_alive() {
    if !common::is_root() {
        eprintln!(
            "skipped: needs root to own port 53 and /etc/resolv.conf in namespaces of its own \
             (as uid 65534 that takes a user namespace, in which nanobox would run as that \
             namespace's root, a different test)"
        );
        return;
    }
    rerun_in_own_namespaces("stalled_nameserver_entry");
}

#[test]
#[ignore = "entry point of `a_stalled_nameserver_does_not_keep_a_run_alive`, which runs it in namespaces of its own"]
fn stalled_nameserver_entry() {
    assert_eq!(std::env::var("NANOBOX_TEST_NETNS").as_deref(), Ok("1"));
    let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(Command::new("ip").args(["link", "set", "lo", "up"]));
    // The system's nameserver: one that reads queries and never answers.
    let ns = proxy_util::StalledNameserver::start("127.0.0.1:53");
    let dir = TempDir::new();
    let conf = dir.path().join("resolv.conf");
    std::fs::write(
        &conf,
        "nameserver 127.0.0.1\noptions timeout:5 attempts:2\n",
    )
    .unwrap();
    ok(Command::new("mount")
        .arg("--bind")
        .arg(&conf)
        .arg("/etc/resolv.conf"));
    let sb = Sandbox::builder()
        .allow_network(&["*"])
        .wall_time_limit(common::slow(Duration::from_secs(2)))
        .build()
        .unwrap();
    let r = sb
        .run("sh", &["-c", "curl -sS https://stall.test/; sleep 60"])
        .unwrap();
    let ended = std::time::Instant::now();
    assert_eq!(r.outcome, Outcome::WallTimeLimit, "{r:?}");
    assert!(
        r.wall_time < common::slow(Duration::from_secs(4)),
        "the run outlived its 2 s limit: {:?}",
        r.wall_time
    );
    assert!(ns.queries() > 0, "the lookup was never sent");
    // No retry of the lookup after the run: it was cancelled with the proxy (the resolver's own
    // retry would come 2 s after the first query; 300 ms of slack for a query sent just before
    // the end and read just after it).
    std::thread::sleep(Duration::from_millis(2500));
    let late = ns.queries_after(ended + Duration::from_millis(300));
    assert_eq!(late, 0, "queries were sent after the run ended");
    let e = r.network.iter().find(|e| e.host == "stall.test").unwrap();
    assert_eq!(
        e.reason.as_deref(),
        Some("the run ended before it connected"),
        "{e:?}"
    );
}
