"""The `nanobox` command that the wheel installs (a console script around the CLI's own code)."""

import json
import os
import subprocess
import sys

import pytest

import nanobox

BIN = os.path.join(os.path.dirname(sys.executable), "nanobox")


def nanobox_cmd(*args, **kw):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=60, cwd="/tmp", **kw)


def test_the_package_installs_the_nanobox_command():
    assert os.access(BIN, os.X_OK), f"{BIN} is not an executable console script"


def test_runs_a_program_and_passes_its_status_and_output_through():
    r = nanobox_cmd("run", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


def test_json_report_is_the_cli_contract():
    r = nanobox_cmd("run", "--json", "--timeout", "1s", "--", "sleep", "5")
    assert r.returncode == 124, r.stderr
    report = json.loads(r.stdout)
    assert report["status"] == "wall_time_limit"
    assert report["exit_code"] is None


def test_the_program_runs_isolated_as_from_the_binary():
    # Not root, its own pid namespace, no network: the command is the sandbox, not a plain exec.
    r = nanobox_cmd("run", "--", "sh", "-c", "id -u; echo $$; cat /proc/net/dev | wc -l")
    uid, pid, netdev_lines = r.stdout.split()
    assert uid != "0" and pid in ("1", "2"), r.stdout
    assert netdev_lines == "3", "only loopback in the sandbox's network namespace"


def test_usage_errors_and_help_have_the_cli_s_statuses():
    bad = nanobox_cmd("run", "--memory", "lots", "--", "true")
    assert bad.returncode == 2 and "--memory" in bad.stderr
    helped = nanobox_cmd("run", "--help")
    assert helped.returncode == 0 and "EXIT STATUS" in helped.stdout.upper()
    version = nanobox_cmd("--version")
    assert version.returncode == 0 and nanobox.__version__ in version.stdout


def test_doctor_reports_json():
    r = nanobox_cmd("doctor", "--json")
    assert r.returncode in (0, 1), r.stderr
    assert "ready" in json.loads(r.stdout)


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_signal_ends_the_command_and_its_sandbox(sig, tmp_path):
    import signal
    import time

    beat = tmp_path / "beat"
    os.chmod(tmp_path, 0o777)
    p = subprocess.Popen(
        [BIN, "run", "--rw", f"{tmp_path}:/w", "--",
         "sh", "-c", "while :; do date +%s%N > /w/beat; sleep 0.05; done"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not beat.exists():
        assert time.monotonic() < deadline, "the program never started"
        time.sleep(0.05)
    p.send_signal(getattr(signal, "SIG" + sig))
    p.wait(timeout=20)
    assert p.returncode != 0
    # Nothing of the sandbox is left running: the heartbeat stops.
    time.sleep(0.5)
    last = beat.read_text()
    time.sleep(1.0)
    assert beat.read_text() == last, "the sandboxed program outlived the command"


@pytest.mark.parametrize("sig,code", [("INT", 4), ("TERM", 5)])
def test_a_signal_to_the_command_is_passed_on_to_the_program(sig, code, tmp_path):
    # The console script runs the Rust code in this Python process: its handlers, not Python's,
    # get the signal during the run, and the program's trap decides the status.
    import signal
    import time

    os.chmod(tmp_path, 0o777)
    p = subprocess.Popen(
        [BIN, "run", "--rw", f"{tmp_path}:/w", "--", "sh", "-c",
         f"trap 'echo trapped > /w/marker; exit {code}' {sig}; echo > /w/ready; "
         "while :; do sleep 0.05; done"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert time.monotonic() < deadline, "the program never started"
        time.sleep(0.05)
    p.send_signal(getattr(signal, "SIG" + sig))
    _, err = p.communicate(timeout=20)
    assert p.returncode == code, err
    assert (tmp_path / "marker").read_text() == "trapped\n"
    assert "KeyboardInterrupt" not in err
