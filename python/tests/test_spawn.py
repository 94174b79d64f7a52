"""spawn: output as it comes, the context manager, wait/poll/kill, wait_with_output."""

import os
import threading
import time

import pytest

import nanobox
from nanobox import Sandbox


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_iteration_delivers_output_as_it_comes(sandbox):
    start = time.monotonic()
    child = sandbox.spawn("sh", ["-c", "echo first; sleep 1; echo second >&2; sleep 0.2; echo third"])
    seen = []
    for stream, data in child:
        seen.append((stream, data, time.monotonic() - start, child.poll()))
    assert [(s, d) for s, d, _, _ in seen] == [
        ("stdout", b"first\n"), ("stderr", b"second\n"), ("stdout", b"third\n")]
    # The first chunk came while the program was still running.
    assert seen[0][2] < 0.8 and seen[0][3] is None
    assert seen[1][2] >= 0.9
    outcome = child.wait()
    assert outcome == "exited" and outcome.exit_code == 0 and outcome.success
    assert isinstance(outcome, nanobox.Outcome)


def test_context_manager_kills_and_reaps(sandbox):
    start = time.monotonic()
    with sandbox.spawn("sh", ["-c", "echo up; sleep 60 & sleep 60"]) as child:
        pid = child.pid
        assert next(child) == ("stdout", b"up\n")
        assert child.poll() is None
    assert time.monotonic() - start < 10
    o = child.poll()
    assert o == "signaled" and o.signal == 9
    assert gone(pid)
    assert list(child) == []  # both streams closed


def test_context_manager_on_exception(sandbox):
    with pytest.raises(RuntimeError):
        with sandbox.spawn("sleep", ["60"]) as child:
            raise RuntimeError("boom")
    assert child.poll().signal == 9


def test_kill_wait_timeout_and_kill_from_another_thread(sandbox):
    child = sandbox.spawn("sleep", ["60"])
    assert child.try_wait() is None
    with pytest.raises(TimeoutError):
        child.wait(timeout=0.2)
    threading.Timer(0.3, child.kill).start()
    start = time.monotonic()
    o = child.wait()  # released by kill() from the timer thread
    assert time.monotonic() - start < 5
    assert (o.status, o.signal) == ("signaled", 9)
    child.kill()  # after the end: nothing to do


def test_wait_with_output_returns_what_was_not_iterated(sandbox):
    child = sandbox.spawn("sh", ["-c", "echo one; sleep 0.3; echo two; echo err >&2; exit 4"])
    assert next(child) == ("stdout", b"one\n")
    r = child.wait_with_output()
    assert isinstance(r, nanobox.RunResult)
    assert (r.stdout, r.stderr, r.exit_code, r.outcome) == ("two\n", "err\n", 4, "exited")
    with pytest.raises(RuntimeError):
        child.wait()


def test_wait_does_not_block_on_unread_output(sandbox):
    # 1 MiB on stdout, more than a pipe holds; nobody reads it while waiting.
    child = sandbox.spawn("sh", ["-c", "head -c 1048576 /dev/zero"])
    assert child.wait(timeout=20) == "exited"
    r = child.wait_with_output()
    assert len(r.stdout_bytes) == 1048576


def test_spawn_output_limit_truncates():
    child = Sandbox(output_limit=100).spawn("sh", ["-c", "head -c 100000 /dev/zero; sleep 30"])
    data = b"".join(d for s, d in child)
    assert len(data) == 100
    r = child.wait_with_output()
    assert r.outcome == "output_limit" and r.stdout_truncated


def test_spawn_setup_errors_raise(sandbox):
    with pytest.raises(nanobox.ProgramNotFoundError):
        sandbox.spawn("no-such-program")
