"""A HumanEval-style harness: each candidate solution runs against each of its tests in a fresh
sandbox with a per-test timeout and the test's input on stdin; a test passes when the program
exits 0 in time and prints the expected output. Prints one line per problem and pass@1.

    python3 docs/examples/humaneval.py

A real harness reads problems and model samples from files; these four are inline, and the last
two are wrong on purpose (an endless loop ended by its timeout, a wrong answer).
"""

from nanobox import MB, Sandbox

PROBLEMS = [
    ("add", "a, b = map(int, input().split())\nprint(a + b)\n", [("1 2\n", "3"), ("-5 5\n", "0")]),
    ("reverse", "print(input()[::-1])\n", [("abc\n", "cba"), ("\n", "")]),
    ("fib", "n = int(input())\nwhile True:\n    pass\n", [("10\n", "55")]),
    ("max", "print(min(map(int, input().split())))\n", [("3 9 4\n", "9")]),
]

VERDICTS = {"wall_time_limit": "timeout", "memory_limit": "memory limit"}


def main():
    # One sandbox for every run: no network, no host files, 256 MiB and 16 processes per run.
    sandbox = Sandbox(memory_limit=256 * MB, process_limit=16, wall_time_limit=30)
    passed = 0
    for name, solution, tests in PROBLEMS:
        verdicts = []
        for stdin, expected in tests:
            # Per test, tighter than the sandbox's 30 s.
            r = sandbox.run("python3", ["-c", solution], stdin=stdin, timeout=2)
            if r.returncode == 0:
                verdicts.append("pass" if r.stdout.rstrip("\n") == expected else "wrong answer")
            else:
                verdicts.append(VERDICTS.get(r.outcome, "runtime error"))
        ok = all(v == "pass" for v in verdicts)
        passed += ok
        print(f"{name:8} {'PASS' if ok else 'FAIL'} {verdicts}")
    print(f"pass@1 = {passed}/{len(PROBLEMS)}")


if __name__ == "__main__":
    main()
