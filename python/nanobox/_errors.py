"""``nanobox.CalledProcessError``: what ``check=True`` and ``RunResult.check_returncode()`` raise."""

import subprocess
from typing import Any, Optional


class CalledProcessError(subprocess.CalledProcessError):
    """A sandboxed run whose ``returncode`` was not 0 (``check=True``, ``check_returncode()``).

    A ``subprocess.CalledProcessError``, so ``except subprocess.CalledProcessError`` catches it,
    with its attributes: ``returncode`` (as ``RunResult.returncode``: the exit code, ``-N`` after
    signal N, ``-9`` when a limit ended the run), ``cmd`` (``[program, *args]``, or the command
    line of ``shell=True``), ``stdout``/``output`` and ``stderr`` (``str``); and ``result``, the
    whole ``RunResult`` (``outcome``, ``wall_time``, ...). It is not a ``SandboxError``: the run
    itself went as asked, the program failed.
    """

    def __init__(
        self,
        returncode: int,
        cmd: Any,
        output: Optional[str] = None,
        stderr: Optional[str] = None,
        result: Any = None,
    ) -> None:
        super().__init__(returncode, cmd, output, stderr)
        self.result = result

    def __str__(self) -> str:
        outcome = getattr(self.result, "outcome", None)
        if outcome not in (None, "exited", "signaled"):
            return (
                f"Command {self.cmd!r} was ended by the sandbox's {outcome} "
                f"(returncode {self.returncode})."
            )
        return super().__str__()

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # The RunResult cannot be pickled; the rest can.
        return (type(self), (self.returncode, self.cmd, self.output, self.stderr))
