"""The presets end to end with real programs."""

import os

import pytest

from conftest import need
import nanobox
from nanobox import Permission, Sandbox, SandboxBuilder


def test_presets_return_builders(tmp_path):
    for b in (Sandbox.agent_executor(tmp_path), Sandbox.code_judge(tmp_path),
              Sandbox.data_analysis(tmp_path, tmp_path)):
        assert isinstance(b, SandboxBuilder)


def test_data_analysis_reads_csv_writes_result(tmp_path):
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    out.mkdir()
    (inp / "data.csv").write_text("name,value\na,1\nb,2\nc,39\n")
    script = (
        "import csv\n"
        "rows = list(csv.DictReader(open('/input/data.csv')))\n"
        "total = sum(int(r['value']) for r in rows)\n"
        "open('/output/result.txt', 'w').write(f'{len(rows)} rows, total {total}\\n')\n"
        "try:\n    open('/input/x', 'w')\nexcept OSError:\n    print('input is read-only')\n"
    )
    sandbox = Sandbox.data_analysis(inp, out).wall_time_limit(60).build()
    r = sandbox.run("python3", ["-c", script])
    assert r.success, r.stderr
    assert r.stdout == "input is read-only\n"
    result = out / "result.txt"
    assert result.read_text() == "3 rows, total 42\n"
    assert result.stat().st_uid == os.getuid()


C_OK = "#include <stdio.h>\nint main(void){ printf(\"%d\\n\", 6*7); return 0; }\n"
C_FAIL = "int main(void){ return 3; }\n"
C_SPIN = "int main(void){ volatile unsigned long i = 0; for(;;) i++; }\n"


def test_code_judge_compiles_with_gcc_then_runs(tmp_path):
    need("gcc")
    sub, build = tmp_path / "submission", tmp_path / "build"
    sub.mkdir()
    build.mkdir()
    for name, src in (("ok.c", C_OK), ("fail.c", C_FAIL), ("spin.c", C_SPIN)):
        (sub / name).write_text(src)
    judge = (Sandbox.code_judge(sub)
             .mount(build, "/build", Permission.ReadWrite)
             .cpu_time_limit(1)
             .build())
    for name in ("ok", "fail", "spin"):
        r = judge.run("gcc", ["-O1", "-o", f"/build/{name}", f"/submission/{name}.c"])
        assert r.verdict == "accepted", r.stderr
        assert (build / name).exists()
    r = judge.run("/build/ok")
    assert r.verdict == "accepted" and r.stdout == "42\n"
    assert r.peak_memory > 0
    assert judge.run("/build/fail").verdict == "runtime_error"
    r = judge.run("/build/spin")
    assert r.verdict == "time_limit" and r.outcome == "cpu_time_limit"
    # The submission stays read-only.
    r = judge.run("sh", ["-c", "echo x > /submission/ok.c"])
    assert r.verdict == "runtime_error"
    assert (sub / "ok.c").read_text() == C_OK


def test_agent_edits_its_workspace(tmp_path):
    (tmp_path / "notes.txt").write_text("status: old\n")
    agent = Sandbox.agent_executor(tmp_path).wall_time_limit(60).build()
    r = agent.run("sh", ["-c", "pwd; echo $HOME; sed -i s/old/new/ notes.txt;"
                               "echo added >> notes.txt; mkdir -p src && echo 'x=1' > src/m.py"])
    assert r.success, r.stderr
    assert r.stdout == "/workspace\n/workspace\n"
    assert (tmp_path / "notes.txt").read_text() == "status: new\nadded\n"
    assert (tmp_path / "src" / "m.py").read_text() == "x=1\n"


def test_agent_has_no_network_by_default(tmp_path):
    r = Sandbox.agent_executor(tmp_path).wall_time_limit(60).build().run(
        "python3", ["-c", "import socket; socket.create_connection(('1.1.1.1', 80), timeout=3)"])
    assert not r.success


def test_explain_shows_another_platform_s_layout_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    e = Sandbox.agent_executor("/Users/me/ws").explain(
        "sh", ["-c", f"touch {marker}"], platform="macos")
    assert e["platform"] == "macos"
    assert e["mounts"][0]["sandbox"] == "/Users/me/ws"
    assert ["NANOBOX_WORKSPACE", "/Users/me/ws"] in e["env"]
    assert e["macos"]["argv"][0] == "/usr/bin/sandbox-exec"
    assert e["macos"]["profile"] in e["text"]
    assert not marker.exists()
    e = Sandbox.agent_executor(tmp_path).explain("true", platform="linux")
    assert e["mounts"][0]["sandbox"] == "/workspace"
    assert ["NANOBOX_WORKSPACE", "/workspace"] in e["env"]
    with pytest.raises(nanobox.InvalidSandboxPathError):
        Sandbox.builder().mount("/Users/x", "/x").explain("ls", platform="macos")
    with pytest.raises(nanobox.InvalidOptionError):
        Sandbox.builder().explain("ls", platform="beos")
