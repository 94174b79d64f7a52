"""The ``nanobox`` command that ``pip install nanobox`` puts on PATH.

It runs the same command-line code as the Rust binary (``nanobox run ...``, ``nanobox doctor``),
inside this Python process, and exits with its status.
"""

import signal
import sys

from . import _nanobox


def main() -> None:
    # Behave as the Rust binary does. Until a run starts, Ctrl-C and SIGTERM end the command the
    # way they end any program (Python would turn SIGINT into a KeyboardInterrupt that the Rust
    # code never sees). Once it starts, the Rust code installs its own handlers for both: the
    # signal is passed on to the sandboxed program, which gets --stop-timeout to end before the
    # sandbox is killed, and the command exits with the status the help describes (130/143).
    # Python's handler must not be the one in place then: the Rust handlers would call it, and a
    # KeyboardInterrupt would be raised once the command returns.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(_nanobox._cli_main(["nanobox", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
