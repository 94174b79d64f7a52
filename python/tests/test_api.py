"""The surface: builder, keyword constructor, results, conversions, exceptions."""

import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest

import nanobox
from nanobox import GB, KB, MB, Permission, Sandbox


def test_issue_example():
    sandbox = Sandbox.builder().working_dir("/tmp").memory_limit(128 * MB).build()
    result = sandbox.run("echo", ["hello"])
    assert result.stdout == "hello\n"
    assert result.exit_code == 0
    assert result.outcome == "exited"
    assert result.success


def test_sizes_and_permission():
    assert (KB, MB, GB) == (1024, 1024**2, 1024**3)
    assert Permission.READ_ONLY == Permission.ReadOnly
    assert Permission.READ_WRITE == Permission.ReadWrite
    assert Permission.ReadOnly != Permission.ReadWrite
    assert nanobox.DEFAULT_OUTPUT_LIMIT == 64 * MB
    assert nanobox.DEFAULT_TMP_SIZE == 256 * MB


def test_every_builder_method_chains_and_is_applied(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("from the host\n")
    out = tmp_path / "out"
    out.mkdir()
    b = Sandbox.builder()
    chain = [
        b.mount(data, "/data", Permission.ReadOnly),
        b.mount(str(out), "/out", Permission.ReadWrite),
        b.working_dir("/out"),
        b.env("ONE", "1"),
        b.envs({"TWO": "2"}),
        b.envs([("THREE", "3")]),
        b.stdin("typed input"),
        b.wall_time_limit(timedelta(seconds=30)),
        b.output_limit(1 * MB),
        b.allow_network(["example.org"]),
        b.map_host("local.test", "127.0.0.1"),
        b.allow_address("10.1.0.0/16"),
        b.upstream_proxy("http://127.0.0.1:9"),
        b.no_network(),
        b.hostname("pybox"),
        b.tmp_size(32 * MB),
        b.seccomp(deny=["mkdir", "mkdirat"]),
        b.memory_limit(256 * MB),
        b.cpu_limit(1.5),
        b.cpu_time_limit(20),
        b.process_limit(32),
        b.file_size_limit(1 * MB),
        b.allow_degraded_limits(),
        b.allow_degraded_isolation(),
    ]
    assert all(x is b for x in chain)
    sandbox = b.build()
    script = (
        "cat /data/in.txt; echo $ONE$TWO$THREE; hostname; pwd; cat; echo;"
        "echo written > /out/w.txt; mkdir /tmp/d || echo mkdir-refused;"
        "echo x > /data/x 2>/dev/null || echo ro-refused"
    )
    r = sandbox.run("sh", ["-c", script])
    assert r.outcome == "exited", r.stderr
    assert r.stdout.splitlines() == [
        "from the host",
        "123",
        "pybox",
        "/out",
        "typed input",
        "mkdir-refused",
        "ro-refused",
    ]
    assert (out / "w.txt").read_text() == "written\n"
    assert {e.limit for e in r.limits} >= {"memory", "cpu", "cpu_time", "processes", "file_size"}
    assert r.network == []  # no_network() came last


def test_keyword_constructor(tmp_path):
    (tmp_path / "f.txt").write_text("kw\n")
    sandbox = Sandbox(
        memory_limit=128 * MB,
        mounts=[(tmp_path, "/input", Permission.ReadOnly), (str(tmp_path), "/again")],
        wall_time_limit=timedelta(seconds=5),
        env={"GREETING": "hi"},
        working_dir="/input",
        stdin=b"bytes in",
        hostname="kwbox",
        allow_network=["pypi.org"],
        seccomp_deny=["mkdir", "mkdirat"],
    )
    r = sandbox.run(
        "sh",
        ["-c", "cat f.txt /again/f.txt; echo $GREETING; hostname; cat; echo; echo $HTTPS_PROXY;"
               "mkdir /tmp/x || echo refused"],
    )
    assert r.stdout.splitlines() == [
        "kw", "kw", "hi", "kwbox", "bytes in", "http://127.0.0.1:3128", "refused"]
    assert [e.limit for e in r.limits] == ["memory"]
    # A float number of seconds works as well.
    r = Sandbox(wall_time_limit=0.3).run("sleep", ["5"])
    assert r.outcome == "wall_time_limit"
    with pytest.raises(TypeError, match="unexpected keyword"):
        Sandbox(memory=1)


def test_builder_configure_takes_the_keywords():
    b = Sandbox.builder().configure(hostname="conf", env={"K": "v"})
    assert isinstance(b, nanobox.SandboxBuilder)
    assert b.build().run("sh", ["-c", "hostname; echo $K"]).stdout == "conf\nv\n"


def test_stdin_bytes_str_path_and_per_run(tmp_path, sandbox):
    f = tmp_path / "in.bin"
    f.write_bytes(b"\x00\x01file")
    assert sandbox.run("cat", stdin=b"\xffraw").stdout_bytes == b"\xffraw"
    assert sandbox.run("cat", stdin="text é").stdout == "text é"
    assert sandbox.run("cat", stdin=f).stdout_bytes == b"\x00\x01file"
    assert sandbox.run("cat", stdin=bytearray(b"ba")).stdout == "ba"
    assert sandbox.run("cat").stdout == ""  # default: end-of-file at once
    sb = Sandbox.builder().stdin(f).build()
    assert sb.run("cat").stdout_bytes == b"\x00\x01file"
    assert sb.run("cat", [], "override").stdout == "override"
    with pytest.raises(TypeError):
        sandbox.run("cat", stdin=42)


def test_args_are_a_list_not_a_string(sandbox):
    assert sandbox.run("echo", ("a", b"b", Path("c"))).stdout == "a b c\n"
    with pytest.raises(TypeError, match="single string"):
        sandbox.run("echo", "hello")


def test_result_fields(sandbox):
    r = sandbox.run("sh", ["-c", "printf 'out\\377'; printf err >&2; exit 3"])
    assert r.stdout_bytes == b"out\xff"
    assert r.stdout == "out\ufffd"
    assert r.stderr == "err" and r.stderr_bytes == b"err"
    assert (r.outcome, r.exit_code, r.signal, r.success) == ("exited", 3, None, False)
    assert r.verdict == "runtime_error"
    assert r.outcome_detail == "exited" and r.outcome_detail.exit_code == 3
    assert isinstance(r.wall_time, timedelta) and isinstance(r.cpu_time, timedelta)
    assert timedelta(0) < r.wall_time < timedelta(seconds=10)
    assert isinstance(r.peak_memory, int)
    assert r.accounting in ("cgroup v2", "cgroup v1", "rusage")
    assert r.degraded == [] and r.network == [] and r.limits == []
    assert not r.stdout_truncated and not r.stderr_truncated
    report = json.loads(r.to_json())
    assert report["status"] == "exited" and report["exit_code"] == 3
    assert report["stdout"] == "out\ufffd" and "wall_time_ms" in report
    assert r.to_dict() == report
    assert "exited with code 3" in repr(r)

    r = sandbox.run("sh", ["-c", "kill -SEGV $$"])
    assert (r.outcome, r.signal, r.exit_code, r.verdict) == ("signaled", 11, None, "runtime_error")


def test_output_limit():
    r = Sandbox(output_limit=1000).run("sh", ["-c", "head -c 100000 /dev/zero"])
    assert r.outcome == "output_limit" and r.verdict == "output_limit"
    assert r.stdout_truncated and len(r.stdout_bytes) == 1000


def test_cpu_time_limit():
    r = Sandbox(cpu_time_limit=timedelta(milliseconds=500), wall_time_limit=20).run(
        "sh", ["-c", "while :; do :; done"])
    assert r.outcome == "cpu_time_limit" and r.verdict == "time_limit"
    assert r.cpu_time >= timedelta(milliseconds=400)


def test_durations_reject_bad_values():
    with pytest.raises(nanobox.InvalidOptionError) as e:
        Sandbox(wall_time_limit=-1)
    assert e.value.option == "wall_time_limit"
    with pytest.raises(nanobox.InvalidOptionError):
        Sandbox.builder().cpu_time_limit(float("nan"))
    with pytest.raises(TypeError):
        Sandbox.builder().wall_time_limit(True)
    with pytest.raises(TypeError):
        Sandbox.builder().wall_time_limit("5s")
    with pytest.raises(nanobox.InvalidOptionError):  # zero: refused by build()
        Sandbox(wall_time_limit=timedelta(0))


def test_exception_hierarchy_and_attributes(tmp_path, sandbox):
    for cls in (nanobox.MountError, nanobox.InvalidOptionError, nanobox.UnsupportedError,
                nanobox.HostUnsupportedError, nanobox.SetupError, nanobox.ProgramNotFoundError,
                nanobox.ProgramNotExecutableError, nanobox.IoError):
        assert issubclass(cls, nanobox.SandboxError)
    for cls in (nanobox.MountSourceMissingError, nanobox.RelativeSandboxPathError,
                nanobox.InvalidSandboxPathError, nanobox.ReservedPathError,
                nanobox.DuplicateMountError):
        assert issubclass(cls, nanobox.MountError)
    assert issubclass(nanobox.SandboxError, Exception)

    with pytest.raises(nanobox.MountSourceMissingError) as e:
        Sandbox(mounts=[("/definitely/not/here", "/in")])
    assert e.value.path == "/definitely/not/here" and "/definitely/not/here" in str(e.value)
    with pytest.raises(nanobox.RelativeSandboxPathError):
        Sandbox.builder().mount(tmp_path, "in").build()
    with pytest.raises(nanobox.RelativeSandboxPathError):
        Sandbox(working_dir="relative")
    with pytest.raises(nanobox.InvalidSandboxPathError):
        Sandbox(mounts=[(tmp_path, "/a/../etc")])
    with pytest.raises(nanobox.ReservedPathError) as e:
        Sandbox(mounts=[(tmp_path, "/etc/x")])
    assert e.value.path == "/etc/x"
    with pytest.raises(nanobox.DuplicateMountError):
        Sandbox(mounts=[(tmp_path, "/d"), (tmp_path, "/d/")])
    with pytest.raises(nanobox.InvalidOptionError) as e:
        Sandbox(hostname="")
    assert e.value.option == "hostname" and "hostname" in str(e.value)
    with pytest.raises(nanobox.InvalidOptionError) as e:
        Sandbox(seccomp_deny=["read"], seccomp_allow=["read"])
    assert e.value.option == "seccomp"
    with pytest.raises(nanobox.InvalidOptionError) as e:
        Sandbox(allow_network=["http://bad/path"])
    assert e.value.option == "allow_network"
    with pytest.raises(nanobox.InvalidOptionError) as e:
        Sandbox.builder().map_host("x", "not-an-ip")
    assert e.value.option == "map_host"
    with pytest.raises(nanobox.InvalidOptionError):
        Sandbox(memory_limit=1000)

    with pytest.raises(nanobox.ProgramNotFoundError) as e:
        sandbox.run("no-such-program-here")
    assert e.value.program == "no-such-program-here"
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    sb = Sandbox(mounts=[(tmp_path, "/w")])
    with pytest.raises(nanobox.ProgramNotExecutableError) as e:
        sb.run("/w/script.sh")
    assert e.value.program == "/w/script.sh"


def test_probe_and_clean_stale(probe):
    assert probe["platform"] == "linux"
    assert probe["ready"] is True
    names = [c["name"] for c in probe["checks"]]
    assert names and all(isinstance(n, str) for n in names)
    for c in probe["checks"]:
        assert c["status"] in ("available", "missing")
        assert set(c) == {"name", "status", "detail", "required", "used", "fix"}
    removed = Sandbox.clean_stale()
    assert isinstance(removed, list)


def test_reprs(sandbox):
    assert "Sandbox" in repr(sandbox)
    assert "SandboxBuilder" in repr(Sandbox.builder())
    assert sandbox.degraded == []
    assert nanobox.__version__
    assert os.path.exists(os.path.join(os.path.dirname(nanobox.__file__), "py.typed"))


def test_kernel_pool_limits_bound_the_program_and_unknown_pools_are_refused():
    # The builder method and the keyword set the bound the program sees in its own namespace.
    sb = Sandbox.builder().kernel_pool_limit("inotify_instances", 3).build()
    r = sb.run("cat", ["/proc/sys/user/max_inotify_instances"])
    assert r.stdout == "3\n", r
    sb = Sandbox(kernel_pool_limits={"ptys": 2, "pending_signals": 7})
    r = sb.run("sh", ["-c", "grep -o 'max=[0-9]*' /proc/mounts; grep SigQ /proc/self/status"])
    assert "max=2" in r.stdout and "/7" in r.stdout, r
    with pytest.raises(ValueError, match="unknown kernel pool"):
        Sandbox.builder().kernel_pool_limit("aio", 1)
