"""Hostile basics, as in the Rust tests: memory bomb, timeout, no network, denied hosts."""

import http.server
import socket
import threading
import time

import pytest

import nanobox
from nanobox import MB, Sandbox

BOMB = "b = bytearray(512 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('survived')"


def test_memory_bomb_ends_in_memory_limit(probe):
    try:
        sandbox = Sandbox(memory_limit=64 * MB, wall_time_limit=60)
    except nanobox.HostUnsupportedError as e:
        # No writable cgroup on this host: the strict build refuses instead of running unlimited.
        assert "cgroup" in str(e).lower() or e.missing
        return
    r = sandbox.run("python3", ["-c", BOMB])
    assert r.outcome == "memory_limit", (r, r.stderr)
    assert r.verdict == "memory_limit"
    assert "survived" not in r.stdout
    assert r.peak_memory <= 64 * MB + 4 * MB


def test_memory_bomb_without_limit_runs():
    # The same program gets its memory when no limit is set: the limit above is what stopped it.
    r = Sandbox(wall_time_limit=60).run("python3", ["-c", BOMB])
    assert r.outcome == "exited" and r.stdout == "survived\n", r.stderr


def test_timeout_ends_in_wall_time_limit():
    start = time.monotonic()
    r = Sandbox(wall_time_limit=0.5).run("sh", ["-c", "sleep 30 & sleep 30; echo never"])
    assert r.outcome == "wall_time_limit" and r.verdict == "time_limit"
    assert "never" not in r.stdout
    assert time.monotonic() - start < 5


FETCH = """
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=5)
    print("fetched")
except Exception as e:
    print("failed", type(e).__name__, getattr(e, "code", ""))
"""


def test_no_network_urllib_fails(sandbox):
    for url in ("http://example.com/", "http://1.1.1.1/", "https://pypi.org/"):
        r = sandbox.run("python3", ["-c", FETCH, url])
        assert r.stdout.startswith("failed"), (url, r.stdout, r.stderr)


@pytest.fixture
def host_listener():
    """A TCP listener on the host's loopback that answers every connection."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    accepted = []

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            accepted.append(1)
            c.sendall(b"hello from the host\n")
            c.close()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1], accepted
    srv.close()


CONNECT = """
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
    print("connected", s.recv(100))
except OSError as e:
    print("refused", e.errno)
"""


def test_host_loopback_is_unreachable(sandbox, host_listener):
    port, accepted = host_listener
    # The listener works from the host ...
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        assert s.recv(100) == b"hello from the host\n"
    # ... and not from the sandbox, whose 127.0.0.1 is its own.
    r = sandbox.run("python3", ["-c", CONNECT, str(port)])
    assert r.stdout.startswith("refused"), r.stdout
    assert len(accepted) == 1


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the name http.server calls)
        body = b"local origin\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def origin():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


FETCH_BODY = """
import sys, urllib.request, urllib.error
for url in sys.argv[1:]:
    try:
        print(urllib.request.urlopen(url, timeout=10).read().decode().strip())
    except urllib.error.HTTPError as e:
        print(e.code)
    except Exception as e:
        print("failed", type(e).__name__)
"""


def test_allowlist_denies_with_403_and_reports(origin):
    sandbox = Sandbox(
        allow_network=[f"local.test:{origin}"],
        map_hosts={"local.test": "127.0.0.1"},
        wall_time_limit=60,
    )
    r = sandbox.run("python3", ["-c", FETCH_BODY,
                                f"http://local.test:{origin}/", "http://denied.example/",
                                "http://denied.example/"])
    assert r.stdout.splitlines() == ["local origin", "403", "403"], r.stderr
    by_host = {e.host: e for e in r.network}
    denied = by_host["denied.example"]
    assert denied.allowed is False and denied.port == 80 and denied.reason
    assert denied.pattern is None
    assert denied.count == 2  # repeats are one entry
    assert r.network_omitted == 0
    assert r.to_dict()["network_truncated"] is False
    allowed = by_host["local.test"]
    assert allowed.allowed is True and allowed.port == origin
    assert allowed.pattern == f"local.test:{origin}"
    assert allowed.address == f"127.0.0.1:{origin}"
    assert allowed.bytes_down > 0 and allowed.bytes_up > 0 and allowed.count == 1
    assert "denied.example" in repr(denied) and "count=2" in repr(denied)
    # The JSON report lists them as well.
    assert {e["host"] for e in r.to_dict()["network"]} == {"local.test", "denied.example"}


VIA_PROXY = """
import os, sys, urllib.request, urllib.error
# Through the proxy even for "localhost" (NO_PROXY would send it to the sandbox's own loopback).
os.environ.pop("NO_PROXY"); os.environ.pop("no_proxy")
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode().strip())
except urllib.error.HTTPError as e:
    print(e.code)
"""


def test_allowlist_refuses_host_loopback_without_map_host(origin):
    # The name matches the pattern, but it resolves to the host's loopback: refused.
    r = Sandbox(allow_network=["*:%d" % origin], wall_time_limit=60).run(
        "python3", ["-c", VIA_PROXY, f"http://localhost:{origin}/"])
    assert r.stdout.strip() == "403", r.stderr
    assert [(e.host, e.allowed) for e in r.network] == [("localhost", False)]
    assert "loopback" in r.network[0].reason


def test_a_symlinked_mount_source_is_refused_unless_follow_symlinks(tmp_path):
    # A previous stage (or an archive) left `inputs -> /etc` where the next stage reads its input.
    (tmp_path / "inputs").symlink_to("/etc")
    real = tmp_path / "real"
    real.mkdir()
    (real / "f").write_text("target")
    (tmp_path / "trusted").symlink_to(real)

    with pytest.raises(nanobox.SymlinkedMountSourceError) as e:
        Sandbox.builder().mount(tmp_path / "inputs", "/inputs").build()
    assert isinstance(e.value, nanobox.MountError)
    assert e.value.path == str(tmp_path / "inputs")
    assert e.value.link == str(tmp_path / "inputs")
    assert e.value.target == "/etc"
    assert f"{tmp_path / 'inputs'} -> /etc" in str(e.value)
    with pytest.raises(nanobox.SymlinkedMountSourceError):
        Sandbox(mounts=[(tmp_path / "inputs", "/inputs", nanobox.Permission.ReadOnly)])

    # The opt-in follows a link whose origin the caller knows, in both spellings.
    sb = Sandbox.builder().mount(tmp_path / "trusted", "/in", follow_symlinks=True).build()
    assert sb.run("cat", ["/in/f"]).stdout == "target"
    sb = Sandbox(mounts=[(tmp_path / "trusted", "/in", nanobox.Permission.ReadOnly, True)])
    assert sb.run("cat", ["/in/f"]).stdout == "target"
    with pytest.raises(TypeError):
        Sandbox(mounts=[(tmp_path, "/in", nanobox.Permission.ReadOnly, True, 5)])


def test_a_mount_source_replaced_between_runs_fails_the_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    sb = Sandbox(mounts=[(out, "/out", nanobox.Permission.ReadWrite)])
    assert sb.run("sh", ["-c", "echo 1 > /out/first"]).outcome == "exited"
    out.rename(tmp_path / "out.old")
    out.mkdir()
    with pytest.raises(nanobox.MountSourceChangedError) as e:
        sb.run("sh", ["-c", "echo 2 > /out/second"])
    assert e.value.path == str(out) and e.value.sandbox == "/out"
    assert list(out.iterdir()) == []
