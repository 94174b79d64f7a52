"""Child.signal and Child.stop: signals to the sandboxed program, and the graceful end of a run."""

import datetime
import os
import signal
import threading
import time

import pytest

import nanobox
from nanobox import Sandbox

SLOW = max(1.0, float(os.environ.get("NANOBOX_TEST_SLOWNESS", "1") or 1))

# A background process of the sandbox that rewrites /w/beat every 50 ms: it outlives the program
# unless the end of the run takes it down.
HEARTBEAT = "(while :; do date +%s%N > /w/beat; sleep 0.05; done) & "


@pytest.fixture
def w(tmp_path):
    os.chmod(tmp_path, 0o777)
    return tmp_path


def sandbox_with(w):
    return Sandbox(wall_time_limit=60, mounts=[(str(w), "/w", nanobox.Permission.ReadWrite)])


def started(sb, script, w=None):
    child = sb.spawn("sh", ["-c", script])
    assert next(child) == ("stdout", b"ready\n")
    if w is not None:
        deadline = time.monotonic() + 20 * SLOW
        while not (w / "beat").exists():
            assert time.monotonic() < deadline, "the heartbeat never started"
            time.sleep(0.02)
    return child


def heartbeat_stopped(beat):
    before = beat.read_text()
    time.sleep(0.5 * SLOW)
    assert beat.read_text() == before, "a process of the sandbox outlived the run"


def test_signal_reaches_the_program_that_handles_it(sandbox):
    child = started(sandbox, "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done")
    child.signal(signal.SIGUSR1)  # a signal.Signals
    assert next(child) == ("stdout", b"got-usr1\n")
    o = child.wait()
    assert (o.status, o.exit_code) == ("exited", 7)


def test_signal_takes_an_int_and_a_killing_signal_is_the_outcome(sandbox):
    child = started(sandbox, "echo ready; exec sleep 60")
    child.signal(int(signal.SIGINT))
    o = child.wait()
    assert (o.status, o.signal) == ("signaled", signal.SIGINT)
    child.signal(signal.SIGTERM)  # ended: nothing to do
    assert child.wait() == o


def test_bad_signals_are_refused(sandbox):
    child = started(sandbox, "echo ready; exec sleep 60")
    for bad in (0, -1, 65, 256 + 15, 2**40):
        with pytest.raises(nanobox.InvalidOptionError):
            child.signal(bad)
    for wrong in ("TERM", 15.0, True, None):
        with pytest.raises(TypeError):
            child.signal(wrong)
    assert child.poll() is None, "a refused number reached the program"
    child.kill()
    child.wait()
    with pytest.raises(nanobox.InvalidOptionError):
        child.signal(0)


def test_stop_lets_a_program_that_handles_term_exit(w):
    sb = sandbox_with(w)
    child = started(sb, HEARTBEAT + "trap 'echo bye > /w/trapped; exit 0' TERM; echo ready; "
                        "while :; do sleep 0.05; done", w)
    start = time.monotonic()
    o = child.stop(grace=datetime.timedelta(seconds=10 * SLOW))
    assert (o.status, o.exit_code) == ("exited", 0)
    assert time.monotonic() - start < 10 * SLOW
    assert (w / "trapped").read_text() == "bye\n"
    heartbeat_stopped(w / "beat")
    assert child.stop() == o and child.wait() == o


def test_stop_reports_a_program_that_term_killed(sandbox):
    child = started(sandbox, "echo ready; exec sleep 60")
    o = child.stop()
    assert (o.status, o.signal) == ("signaled", signal.SIGTERM)


def test_stop_kills_after_the_grace_when_term_is_ignored(w):
    sb = sandbox_with(w)
    child = started(sb, HEARTBEAT + "trap '' TERM; echo ready; while :; do sleep 0.05; done", w)
    start = time.monotonic()
    o = child.stop(1)
    took = time.monotonic() - start
    assert (o.status, o.signal) == ("signaled", 9)
    assert 1.0 <= took < 1.0 + 3 * SLOW, took
    heartbeat_stopped(w / "beat")


def test_stop_with_zero_grace_kills_at_once_and_kill_from_another_thread_gets_through(w):
    sb = sandbox_with(w)
    child = started(sb, "trap 'echo no > /w/trapped; exit 0' TERM; echo ready; while :; do sleep 0.05; done")
    o = child.stop(0)
    assert (o.status, o.signal) == ("signaled", 9)
    assert not (w / "trapped").exists(), "a zero grace sends no SIGTERM"
    # While stop() waits out a long grace, another thread's kill() ends it (the GIL is released).
    child = started(sb, "trap '' TERM; echo ready; while :; do sleep 0.05; done")
    threading.Timer(0.3, child.kill).start()
    start = time.monotonic()
    o = child.stop(60)
    assert time.monotonic() - start < 10 * SLOW
    assert (o.status, o.signal) == ("signaled", 9)
    with pytest.raises(nanobox.InvalidOptionError):
        child.stop(-1)
