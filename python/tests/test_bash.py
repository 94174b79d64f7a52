"""Sandbox.bash(): a persistent shell whose commands keep cd, export and processes."""

import threading
import time

import pytest

from nanobox import Bash, BashOutput, InvalidOptionError, Sandbox


def test_directory_variables_and_processes_persist_between_commands():
    with Sandbox(wall_time_limit=30).bash() as sh:
        assert isinstance(sh, Bash)
        sh.run("cd /usr && export K=v")
        out = sh.run("pwd; echo $K")
        assert isinstance(out, BashOutput)
        assert (out.stdout, out.exit_code, out.returncode, out.success) == ("/usr\nv\n", 0, 0, True)
        sh.run("sleep 300 & echo $! > /tmp/pid")
        assert sh.run("kill -0 $(cat /tmp/pid) && echo running").stdout == "running\n"
        out = sh.run("echo e >&2; false")
        assert (out.stderr, out.exit_code, out.success) == ("e\n", 1, False)


def test_a_timeout_interrupts_the_command_and_keeps_the_shell():
    with Sandbox(wall_time_limit=30).bash() as sh:
        sh.run("cd /tmp")
        start = time.monotonic()
        out = sh.run("sleep 30", timeout=0.5)
        assert time.monotonic() - start < 10
        assert (out.timed_out, out.exit_code) == (True, 130)
        assert sh.alive
        assert sh.run("pwd").stdout == "/tmp\n"
        # The default timeout: set_timeout, then every run.
        sh.set_timeout(0.3)
        assert sh.run("sleep 30").timed_out


def test_exit_ends_the_shell_and_the_next_command_raises():
    sb = Sandbox(wall_time_limit=30)
    sh = sb.bash()
    out = sh.run("echo bye; exit 3")
    assert (out.stdout, out.exit_code, out.returncode) == ("bye\n", None, -9)
    assert not sh.alive
    with pytest.raises(InvalidOptionError, match="shell has ended"):
        sh.run("true")
    sh.close()
    with pytest.raises(RuntimeError):
        sh.run("true")


def test_close_ends_the_shell_with_its_outcome():
    sh = Sandbox(wall_time_limit=30).bash()
    assert sh.run("true").success
    assert sh.close().exit_code == 0


def test_the_gil_is_released_while_a_command_runs():
    sb = Sandbox(wall_time_limit=30)
    shells = [sb.bash() for _ in range(3)]
    start = time.monotonic()
    threads = [threading.Thread(target=s.run, args=("sleep 1",)) for s in shells]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 2.8
    for s in shells:
        s.close()
