"""The Python examples of docs/examples/ run and print what docs/examples.md shows."""

import json
import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_the_humaneval_harness_gives_each_verdict():
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "humaneval.py")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "add      PASS ['pass', 'pass']",
        "reverse  PASS ['pass', 'pass']",
        "fib      FAIL ['timeout']",
        "max      FAIL ['wrong answer']",
        "pass@1 = 2/4",
    ]


def test_the_agent_tool_keeps_its_shell_between_calls(tmp_path):
    tmp_path.chmod(0o777)
    calls = "cd /tmp && export K=v\necho \"$K\" > /workspace/out; pwd\nexit 4\npwd\n"
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "agent_tool.py"), str(tmp_path)],
        input=calls,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert [a["exit_code"] for a in answers] == [0, 0, None, 0]
    assert answers[1]["stdout"] == "/tmp\n"
    assert answers[3]["stdout"] == "/workspace\n", "a fresh shell after exit"
    assert (tmp_path / "out").read_text() == "v\n"
