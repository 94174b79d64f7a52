"""Per-run options of run/run_async/spawn/shell, stdin=PIPE, and the subprocess correspondences
(returncode, check_returncode, check=True, CalledProcessError)."""

import asyncio
import os
import pathlib
import signal
import subprocess
import time

import pytest

import nanobox
from nanobox import PIPE, Sandbox


def read_until(child, stream, end):
    """Output of `stream` from iterating `child` until it holds `end`."""
    got = b""
    for s, data in child:
        if s == stream:
            got += data
            if end in got:
                break
    return got


# --- timeout ---------------------------------------------------------------------------------


def test_timeout_tighter_than_the_sandbox_ends_the_run_early():
    sandbox = Sandbox(wall_time_limit=30)
    start = time.monotonic()
    r = sandbox.run("sleep", ["20"], timeout=0.5)
    assert time.monotonic() - start < 10
    assert r.outcome == "wall_time_limit"
    assert r.verdict == "time_limit"


def test_timeout_looser_than_the_sandbox_lets_the_run_finish():
    sandbox = Sandbox(wall_time_limit=0.5)
    assert sandbox.run("sleep", ["1.5"]).outcome == "wall_time_limit"
    r = sandbox.run("sleep", ["1.5"], timeout=20)
    assert (r.outcome, r.returncode) == ("exited", 0)


def test_timeout_accepts_timedelta_and_refuses_zero_and_negative(sandbox):
    from datetime import timedelta

    assert sandbox.run("sleep", ["5"], timeout=timedelta(milliseconds=300)).outcome == "wall_time_limit"
    for bad in (0, -1, 0.0):
        with pytest.raises(nanobox.InvalidOptionError):
            sandbox.run("true", timeout=bad)
    with pytest.raises(TypeError):
        sandbox.run("true", timeout=True)


def test_timeout_on_spawn():
    child = Sandbox(wall_time_limit=30).spawn("sleep", ["20"], timeout=0.3)
    assert child.wait(timeout=10) == "wall_time_limit"


# --- env -------------------------------------------------------------------------------------


def test_env_sets_overrides_and_removes():
    sandbox = Sandbox(wall_time_limit=30, env={"KEEP": "k", "OVER": "old", "GONE": "g"})
    script = 'echo "$KEEP|$OVER|${GONE-unset}|$NEW"'
    assert sandbox.run("sh", ["-c", script]).stdout == "k|old|g|\n"
    r = sandbox.run("sh", ["-c", script], env={"OVER": "new", "GONE": None, "NEW": "n"})
    assert r.stdout == "k|new|unset|n\n"
    # Only that run: the sandbox keeps its environment.
    assert sandbox.run("sh", ["-c", script]).stdout == "k|old|g|\n"


def test_env_remove_of_a_default_variable(sandbox):
    assert sandbox.run("sh", ["-c", 'echo "${HOME-unset}"']).stdout != "unset\n"
    r = sandbox.run("sh", ["-c", 'echo "${HOME-unset}"'], env={"HOME": None})
    assert r.stdout == "unset\n"


def test_env_wrong_types(sandbox):
    with pytest.raises(TypeError):
        sandbox.run("true", env={"A": 1})
    with pytest.raises(TypeError):
        sandbox.run("true", env=[("A", "1")])
    with pytest.raises(nanobox.InvalidOptionError):
        sandbox.run("true", env={"A=B": "1"})


# --- cwd -------------------------------------------------------------------------------------


def test_cwd_sets_the_directory_and_pwd(sandbox):
    assert sandbox.run("sh", ["-c", 'pwd; echo "$PWD"']).stdout == "/tmp\n/tmp\n"
    r = sandbox.run("sh", ["-c", 'pwd; echo "$PWD"'], cwd="/usr/bin")
    assert r.stdout == "/usr/bin\n/usr/bin\n"
    r = sandbox.run("pwd", cwd=pathlib.PurePosixPath("/etc"))
    assert r.stdout == "/etc\n"


def test_cwd_that_cannot_be_entered_fails_the_start(sandbox):
    with pytest.raises(nanobox.SandboxError):
        sandbox.run("true", cwd="/no/such/dir")
    with pytest.raises(nanobox.SandboxError):
        sandbox.run("true", cwd="relative")


# --- output_limit ----------------------------------------------------------------------------


def test_output_limit_per_run(sandbox):
    assert len(sandbox.run("head", ["-c", "5000", "/dev/zero"]).stdout_bytes) == 5000
    r = sandbox.run("sh", ["-c", "head -c 5000 /dev/zero; sleep 20"], output_limit=100)
    assert r.outcome == "output_limit"
    assert r.stdout_truncated and len(r.stdout_bytes) == 100
    # Looser than the sandbox's:
    small = Sandbox(wall_time_limit=30, output_limit=100)
    assert small.run("head", ["-c", "5000", "/dev/zero"], output_limit=10_000).stdout_bytes == bytes(5000)
    with pytest.raises(nanobox.InvalidOptionError):
        sandbox.run("true", output_limit=0)


# --- shell -----------------------------------------------------------------------------------


def test_shell_true_runs_a_command_line(sandbox):
    r = sandbox.run("ls / | wc -l", shell=True)
    assert r.returncode == 0
    n = int(r.stdout.strip())
    assert n == len(sandbox.run("ls", ["/"]).stdout.split())
    assert n > 3
    assert r.args == "ls / | wc -l"


def test_sandbox_shell(sandbox):
    r = sandbox.shell("printf 'a\\nb\\n' | wc -l && echo \"$X\"", env={"X": "x"})
    assert r.stdout.split() == ["2", "x"]
    assert r.outcome == "exited"
    assert sandbox.shell("exit 3").returncode == 3
    assert sandbox.shell("tr a-z A-Z", stdin="shout").stdout == "SHOUT"
    assert sandbox.shell("sleep 10", timeout=0.3).outcome == "wall_time_limit"
    assert sandbox.shell("pwd", cwd="/usr").stdout == "/usr\n"


def test_shell_true_with_args_is_refused(sandbox):
    with pytest.raises(ValueError):
        sandbox.run("echo", ["hi"], shell=True)
    with pytest.raises(ValueError):
        sandbox.spawn("echo", ["hi"], shell=True)
    with pytest.raises(TypeError):
        sandbox.run(["echo", "hi"], shell=True)


def test_shell_true_on_spawn_and_run_async(sandbox):
    child = sandbox.spawn("echo $((6*7))", shell=True)
    assert child.wait_with_output().stdout == "42\n"

    async def main():
        return await sandbox.run_async("echo $0 | tr / _", shell=True, env={"A": "a"})

    assert asyncio.run(main()).stdout == "_bin_sh\n"


# --- stdin=PIPE ------------------------------------------------------------------------------


def test_pipe_is_subprocess_pipe():
    assert nanobox.PIPE == subprocess.PIPE == -1


def test_stdin_is_none_without_pipe(sandbox):
    with sandbox.spawn("true") as child:
        assert child.stdin is None
    with sandbox.spawn("cat", stdin="data") as child:
        assert child.stdin is None


def test_python_repl_over_a_pipe():
    sandbox = Sandbox(wall_time_limit=30)
    with sandbox.spawn("python3", ["-i", "-q", "-u"], stdin=PIPE) as child:
        child.stdin.write(b"print(6*7)\n")
        # The answer comes while stdin is still open: a real conversation.
        assert b"42\n" in read_until(child, "stdout", b"\n")
        assert child.poll() is None
        child.stdin.write(b"print('again')\n")
        assert b"again\n" in read_until(child, "stdout", b"\n")
        child.stdin.close()
        assert child.stdin.closed
        o = child.wait(timeout=10)  # end-of-file ends the REPL
        assert (o.status, o.exit_code) == ("exited", 0)


def test_sh_read_loop_answers_line_by_line():
    sandbox = Sandbox(wall_time_limit=30)
    child = sandbox.spawn("sh", ["-c", 'while read x; do echo "got $x"; done; echo bye'], stdin=subprocess.PIPE)
    for word in ("one", "two", "three"):
        child.stdin.write(word.encode() + b"\n")
        assert read_until(child, "stdout", b"\n") == f"got {word}\n".encode()
    child.stdin.close()
    r = child.wait_with_output()
    assert (r.stdout, r.returncode) == ("bye\n", 0)


def test_stdin_file_object(sandbox):
    child = sandbox.spawn("cat", stdin=PIPE)
    f = child.stdin
    assert f.writable() and not f.readable()
    assert isinstance(f.fileno(), int) and f.fileno() >= 0
    with f:
        f.write(b"abc")
        f.flush()
    assert f.closed
    with pytest.raises(ValueError):
        f.write(b"more")
    assert child.wait_with_output().stdout == "abc"


def test_wait_closes_stdin_so_nothing_hangs():
    sandbox = Sandbox(wall_time_limit=30)
    child = sandbox.spawn("cat", stdin=PIPE)
    child.stdin.write(b"left open\n")
    start = time.monotonic()
    assert child.wait(timeout=10) == "exited"  # cat read end-of-file
    assert time.monotonic() - start < 10
    assert child.stdin.closed
    assert child.wait_with_output().stdout == "left open\n"

    child = sandbox.spawn("cat", stdin=PIPE)
    assert child.stop(grace=5) in ("exited", "signaled")
    assert child.stdin.closed

    with sandbox.spawn("cat", stdin=PIPE) as child:
        pass
    assert child.stdin.closed

    child = sandbox.spawn("sh", ["-c", "cat; echo done"], stdin=PIPE)
    assert child.wait_with_output().stdout == "done\n"
    assert child.stdin.closed


def test_write_after_the_end_raises_broken_pipe(sandbox):
    # Python ignores SIGPIPE: a write to a pipe nobody reads is an EPIPE error.
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    child = sandbox.spawn("true", stdin=PIPE)
    deadline = time.monotonic() + 10
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.poll() == "exited"
    # Non-blocking, so that a pipe someone still held would raise BlockingIOError, not hang.
    os.set_blocking(child.stdin.fileno(), False)
    with pytest.raises(BrokenPipeError):
        child.stdin.write(b"x")
    child.stdin.close()


def test_stdin_under_asyncio_connect_write_pipe():
    sandbox = Sandbox(wall_time_limit=30)
    child = sandbox.spawn("sh", ["-c", "head -c 200000 | wc -c"], stdin=PIPE)

    async def feed():
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, child.stdin)
        for _ in range(20):
            transport.write(b"y" * 10000)  # more than a pipe holds: asyncio waits for room
        while transport.get_write_buffer_size():
            await asyncio.sleep(0.01)
        transport.close()

    asyncio.run(asyncio.wait_for(feed(), 20))
    r = child.wait_with_output()
    assert (r.stdout.strip(), r.returncode) == ("200000", 0)


def test_stdin_under_asyncio_add_writer():
    sandbox = Sandbox(wall_time_limit=30)
    child = sandbox.spawn("wc", ["-c"], stdin=PIPE)
    fd = child.stdin.fileno()
    os.set_blocking(fd, False)
    data = memoryview(b"z" * 300000)

    async def feed():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        sent = 0

        def writable():
            nonlocal sent
            try:
                sent += os.write(fd, data[sent:])
            except BlockingIOError:
                return
            if sent == len(data):
                loop.remove_writer(fd)
                done.set_result(None)

        loop.add_writer(fd, writable)
        await done

    asyncio.run(asyncio.wait_for(feed(), 20))
    child.stdin.close()
    assert child.wait_with_output().stdout.strip() == "300000"


def test_run_refuses_pipe(sandbox):
    with pytest.raises(ValueError, match="spawn"):
        sandbox.run("cat", stdin=PIPE)
    with pytest.raises(ValueError):
        sandbox.shell("cat", stdin=PIPE)

    async def main():
        return await sandbox.run_async("cat", stdin=PIPE)

    with pytest.raises(ValueError):
        asyncio.run(main())


# --- returncode, check_returncode, check=True -------------------------------------------------


def test_returncode_of_exit_and_signal(sandbox):
    assert sandbox.run("true").returncode == 0
    assert sandbox.run("sh", ["-c", "exit 5"]).returncode == 5
    r = sandbox.run("sh", ["-c", "kill -TERM $$"])
    assert (r.outcome, r.signal, r.returncode) == ("signaled", 15, -15)
    child = sandbox.spawn("sleep", ["20"])
    child.kill()
    o = child.wait()
    assert (o.signal, o.returncode) == (9, -9)


def test_returncode_of_a_limit_is_minus_sigkill():
    r = Sandbox(wall_time_limit=0.3).run("sleep", ["10"])
    assert (r.outcome, r.exit_code, r.signal, r.returncode) == ("wall_time_limit", None, None, -9)


def test_check_returncode(sandbox):
    ok = sandbox.run("echo", ["fine"])
    assert ok.check_returncode() is None
    r = sandbox.run("sh", ["-c", "echo out; echo err >&2; exit 3"])
    with pytest.raises(subprocess.CalledProcessError) as info:
        r.check_returncode()
    e = info.value
    assert isinstance(e, nanobox.CalledProcessError)
    assert not isinstance(e, nanobox.SandboxError)
    assert e.returncode == 3
    assert e.cmd == ["sh", "-c", "echo out; echo err >&2; exit 3"] == r.args
    assert (e.stdout, e.output, e.stderr) == ("out\n", "out\n", "err\n")
    assert e.result is r
    assert "exit status 3" in str(e)


def test_check_true(sandbox):
    assert sandbox.run("true", check=True).returncode == 0
    with pytest.raises(subprocess.CalledProcessError) as info:
        sandbox.run("false", check=True)
    assert (info.value.returncode, info.value.cmd) == (1, ["false"])
    with pytest.raises(nanobox.CalledProcessError) as info:
        sandbox.shell("kill -KILL $$", check=True)
    assert info.value.returncode == -9 and info.value.cmd == "kill -KILL $$"
    assert "SIGKILL" in str(info.value)
    with pytest.raises(subprocess.CalledProcessError) as info:
        sandbox.run("sleep", ["10"], timeout=0.3, check=True)
    assert info.value.result.outcome == "wall_time_limit"
    assert "wall_time_limit" in str(info.value)

    async def main():
        return await sandbox.run_async("sh", ["-c", "exit 4"], check=True)

    with pytest.raises(subprocess.CalledProcessError) as info:
        asyncio.run(main())
    assert info.value.returncode == 4


def test_args_of_results_and_children(sandbox):
    assert sandbox.run("echo", ["a", "b"]).args == ["echo", "a", "b"]
    child = sandbox.spawn("echo", ("x",))
    assert child.args == ["echo", "x"]
    assert child.wait_with_output().args == ["echo", "x"]


def test_positional_forms_still_work(sandbox):
    assert sandbox.run("cat", None, "in").stdout == "in"
    assert sandbox.spawn("cat", [], b"in").wait_with_output().stdout == "in"


def test_runs_with_options_release_the_gil(sandbox):
    import threading

    results = []

    def one(i):
        results.append(sandbox.run("sleep 1; echo $N", shell=True, env={"N": str(i)}, timeout=20, cwd="/"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 2.8
    assert sorted(r.stdout for r in results) == ["0\n", "1\n", "2\n"]
