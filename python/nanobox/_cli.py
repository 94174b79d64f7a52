"""The ``nanobox`` command that ``pip install nanobox`` puts on PATH.

It runs the same command-line code as the Rust binary (``nanobox run ...``, ``nanobox doctor``),
inside this Python process, and exits with its status.
"""

import signal
import sys

from . import _nanobox


def main() -> None:
    # Behave as the Rust binary does: Ctrl-C and SIGTERM end the command the way they end any
    # program (Python would turn SIGINT into a KeyboardInterrupt that the Rust code never sees).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(_nanobox._cli_main(["nanobox", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
