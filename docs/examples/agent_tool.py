"""A minimal agent tool: the "run a shell command" tool an LLM agent calls, backed by one
persistent bash in a sandbox. Each line of stdin is one tool call (a shell command); each answer
is one JSON line with the command's output, exit code and time, so that `cd` and `export` from
one call hold in the next, as in the agent's own terminal.

    printf 'cd /tmp && echo hi > f\\ncat f; pwd\\n' | python3 docs/examples/agent_tool.py WORKSPACE

The workspace (default: a new temporary directory) is the only host directory the program sees,
read-write at /workspace; the network is off; each call has 10 s.
"""

import json
import sys
import tempfile

from nanobox import MB, Sandbox


def main():
    workspace = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="agent-workspace-")
    sandbox = Sandbox.agent_executor(workspace).memory_limit(512 * MB).wall_time_limit(10).build()
    shell = sandbox.bash()
    for line in sys.stdin:
        cmd = line.rstrip("\n")
        if not cmd.strip():
            continue
        if not shell.alive:
            # The last call ended the shell (exit, or a command that ignored its timeout): the
            # agent gets a fresh one, as a terminal that was closed.
            shell = sandbox.bash()
        out = shell.run(cmd)
        print(json.dumps({
            "command": cmd,
            "exit_code": out.exit_code,
            "timed_out": out.timed_out,
            "seconds": round(out.duration, 3),
            "stdout": out.stdout,
            "stderr": out.stderr,
        }), flush=True)
    shell.close()


if __name__ == "__main__":
    main()
