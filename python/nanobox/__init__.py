"""nanobox: run untrusted code in a lightweight sandbox.

On Linux every run gets its own user, pid, mount, network, ipc, uts and cgroup namespaces, a
fresh root with the host's system directories read-only, no privileges, a seccomp filter, and the
limits you set. This package binds the Rust library (PyO3); the classes live in
``nanobox._nanobox`` and are re-exported here.

    from nanobox import Sandbox, Permission, MB

    sandbox = (Sandbox.builder()
        .working_dir("/tmp")
        .memory_limit(128 * MB)
        .build())
    result = sandbox.run("echo", ["hello"])
    print(result.stdout)

Or with keyword arguments::

    sandbox = Sandbox(memory_limit=128 * MB, wall_time_limit=5.0,
                      mounts=[("/data", "/input", Permission.ReadOnly)])

Durations accept a ``datetime.timedelta`` or a number of seconds. Errors are ``SandboxError``
subclasses. ``run`` releases the GIL; ``await sandbox.run_async(...)`` runs in the event loop's
default executor.

Per-run options follow ``subprocess``: ``sandbox.run(prog, args, stdin=..., timeout=...,
env={...}, cwd=..., output_limit=..., shell=False, check=False)``, ``sandbox.shell("ls / | wc
-l")``, ``sandbox.spawn(..., stdin=PIPE)`` with ``child.stdin``, and ``RunResult.returncode`` /
``check_returncode()`` raising ``CalledProcessError``. See docs/API.md, "Python".
"""

from ._errors import CalledProcessError

from ._nanobox import (
    Bash,
    BashOutput,
    DEFAULT_HOSTNAME,
    DEFAULT_OUTPUT_LIMIT,
    DEFAULT_PATH,
    DEFAULT_TMP_SIZE,
    DEFAULT_WORKDIR,
    GB,
    KB,
    MB,
    PIPE,
    Child,
    ConfigError,
    DuplicateMountError,
    Enforcement,
    HostUnsupportedError,
    InvalidOptionError,
    InvalidSandboxPathError,
    IoError,
    MountError,
    MountSourceChangedError,
    MountSourceMissingError,
    NetworkEvent,
    Outcome,
    Permission,
    ProgramNotExecutableError,
    ProgramNotFoundError,
    RelativeSandboxPathError,
    ReservedPathError,
    RunResult,
    Sandbox,
    SandboxBuilder,
    SandboxError,
    SetupError,
    SymlinkedMountSourceError,
    UnsupportedError,
    __version__,
)

#: The outcome names a ``RunResult.outcome`` can take.
OUTCOMES = (
    "exited",
    "signaled",
    "wall_time_limit",
    "cpu_time_limit",
    "memory_limit",
    "output_limit",
)

#: The verdict names a ``RunResult.verdict`` can take.
VERDICTS = ("accepted", "runtime_error", "time_limit", "memory_limit", "output_limit")

__all__ = [
    "Sandbox",
    "SandboxBuilder",
    "Permission",
    "RunResult",
    "Outcome",
    "NetworkEvent",
    "Enforcement",
    "Child",
    "Bash",
    "BashOutput",
    "CalledProcessError",
    "PIPE",
    "KB",
    "MB",
    "GB",
    "DEFAULT_OUTPUT_LIMIT",
    "DEFAULT_TMP_SIZE",
    "DEFAULT_HOSTNAME",
    "DEFAULT_PATH",
    "DEFAULT_WORKDIR",
    "OUTCOMES",
    "VERDICTS",
    "SandboxError",
    "MountError",
    "MountSourceMissingError",
    "SymlinkedMountSourceError",
    "MountSourceChangedError",
    "RelativeSandboxPathError",
    "InvalidSandboxPathError",
    "ReservedPathError",
    "DuplicateMountError",
    "InvalidOptionError",
    "UnsupportedError",
    "HostUnsupportedError",
    "SetupError",
    "ProgramNotFoundError",
    "ProgramNotExecutableError",
    "IoError",
    "ConfigError",
    "__version__",
]
