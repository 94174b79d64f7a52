"""Type stubs of nanobox._nanobox, the Rust extension (PyO3) that the nanobox package re-exports."""

import io
import os
import signal
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Optional, Union, final

from typing_extensions import TypedDict, Unpack

_StrPath = Union[str, "os.PathLike[str]"]
#: A program name or argument.
_Arg = Union[str, bytes, "os.PathLike[str]"]
#: A duration: a timedelta or a number of seconds.
_Seconds = Union[timedelta, int, float]
#: What the program reads: nothing, these bytes (a str is encoded as UTF-8), or a host file.
_StdinData = Union[None, bytes, bytearray, str, "os.PathLike[str]"]
#: stdin of one run: as _StdinData, or PIPE (spawn only: the program reads Child.stdin).
_RunStdin = Union[_StdinData, int]
#: A run's environment changes: a str value sets the variable, None removes it.
_RunEnv = Mapping[str, Optional[str]]
_Address = Union[str, IPv4Address, IPv6Address]
_Stream = Literal["stdout", "stderr"]
_OutcomeName = Literal[
    "exited", "signaled", "wall_time_limit", "cpu_time_limit", "memory_limit", "output_limit"
]
_VerdictName = Literal["accepted", "runtime_error", "time_limit", "memory_limit", "output_limit"]

PIPE: int
"""stdin=PIPE (-1, the value of subprocess.PIPE) for Sandbox.spawn: Child.stdin writes to the program."""
KB: int
MB: int
GB: int
DEFAULT_OUTPUT_LIMIT: int
DEFAULT_TMP_SIZE: int
DEFAULT_HOSTNAME: str
DEFAULT_PATH: str
DEFAULT_WORKDIR: str
__version__: str
__all__: list[str]

@final
class Permission:
    """How a host path is visible inside the sandbox."""

    ReadOnly: ClassVar[Permission]
    """The program can read but never modify it."""
    ReadWrite: ClassVar[Permission]
    """The program can read and write it; changes reach the host."""
    READ_ONLY: ClassVar[Permission]
    """Alias of ReadOnly."""
    READ_WRITE: ClassVar[Permission]
    """Alias of ReadWrite."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __int__(self) -> int: ...

_Mount = Union[
    tuple[_StrPath, _StrPath],
    tuple[_StrPath, _StrPath, Permission],
    tuple[_StrPath, _StrPath, Permission, bool],
]

class _Options(TypedDict, total=False):
    """The keyword options of Sandbox(...) and SandboxBuilder.configure(...)."""

    mounts: Optional[Iterable[_Mount]]
    working_dir: Optional[_StrPath]
    env: Union[Mapping[str, str], Iterable[tuple[str, str]], None]
    stdin: _StdinData
    wall_time_limit: Optional[_Seconds]
    output_limit: Optional[int]
    no_network: Optional[bool]
    allow_network: Union[str, Iterable[str], None]
    map_hosts: Optional[Mapping[str, _Address]]
    allow_addresses: Union[str, Iterable[str], None]
    upstream_proxy: Optional[str]
    hostname: Optional[str]
    tmp_size: Optional[int]
    seccomp_deny: Union[str, Iterable[str], None]
    seccomp_allow: Union[str, Iterable[str], None]
    memory_limit: Optional[int]
    cpu_limit: Optional[float]
    cpu_time_limit: Optional[_Seconds]
    process_limit: Optional[int]
    file_size_limit: Optional[int]
    kernel_pool_limits: Optional[dict[str, int]]
    allow_degraded_limits: Optional[bool]
    allow_degraded_isolation: Optional[bool]
    report_denials: Optional[bool]


@final
class SandboxBuilder:
    """Builds a Sandbox; every method changes the builder and returns it."""

    def __init__(self) -> None: ...
    @staticmethod
    def from_config(path: _StrPath) -> SandboxBuilder:
        """A builder with a TOML config file's options, to override (raises ConfigError)."""
    def mount(
        self,
        host: _StrPath,
        sandbox: _StrPath,
        permission: Permission = Permission.ReadOnly,
        follow_symlinks: bool = False,
    ) -> SandboxBuilder:
        """Make `host` visible at the absolute sandbox path `sandbox`.

        A `host` that is or passes through a symlink (other than the system's own) makes build()
        raise SymlinkedMountSourceError, unless `follow_symlinks` is true."""
    def working_dir(self, path: _StrPath) -> SandboxBuilder:
        """The working directory inside the sandbox (default /tmp)."""
    def env(self, key: str, value: str) -> SandboxBuilder:
        """Set one environment variable."""
    def envs(self, vars: Union[Mapping[str, str], Iterable[tuple[str, str]]]) -> SandboxBuilder:
        """Set several environment variables."""
    def stdin(self, data: _StdinData) -> SandboxBuilder:
        """What every run reads on stdin (a str is data, a PathLike a host file)."""
    def wall_time_limit(self, limit: _Seconds) -> SandboxBuilder:
        """End the run after this long."""
    def output_limit(self, bytes: int) -> SandboxBuilder:
        """Cap on captured stdout and on captured stderr, each (default 64 MiB)."""
    def no_network(self) -> SandboxBuilder:
        """Loopback only (the default)."""
    def allow_network(self, patterns: Union[str, Iterable[str]]) -> SandboxBuilder:
        """Allow HTTP/HTTPS to matching hosts through the filtering proxy."""
    def map_host(self, name: str, address: _Address) -> SandboxBuilder:
        """Make the proxy resolve `name` to `address`."""
    def allow_address(self, cidr: str) -> SandboxBuilder:
        """Exempt an address or CIDR block from the proxy's address rules."""
    def upstream_proxy(self, url: str) -> SandboxBuilder:
        """Chain through an upstream HTTP proxy."""
    def hostname(self, name: str) -> SandboxBuilder:
        """Hostname inside the sandbox (default nanobox)."""
    def tmp_size(self, bytes: int) -> SandboxBuilder:
        """Size bound of the private /tmp (default 256 MiB)."""
    def seccomp(
        self,
        deny: Union[str, Iterable[str], None] = None,
        allow: Union[str, Iterable[str], None] = None,
    ) -> SandboxBuilder:
        """The default syscall filter with `deny` answering EPERM and `allow` let through."""
    def memory_limit(self, bytes: int) -> SandboxBuilder:
        """Memory of the whole sandbox (>= 1 MiB)."""
    def cpu_limit(self, cores: float) -> SandboxBuilder:
        """CPU bandwidth in cores."""
    def cpu_time_limit(self, limit: _Seconds) -> SandboxBuilder:
        """CPU time of the whole sandbox."""
    def process_limit(self, n: int) -> SandboxBuilder:
        """Live processes plus threads."""
    def file_size_limit(self, bytes: int) -> SandboxBuilder:
        """Largest file a process may write."""
    def kernel_pool_limit(self, pool: str, n: int) -> SandboxBuilder:
        """Bound the sandbox's share of a kernel pool ("inotify_watches", "ptys", ...)."""
    def allow_degraded_limits(self) -> SandboxBuilder:
        """Use rlimits where no cgroup is writable."""
    def allow_degraded_isolation(self) -> SandboxBuilder:
        """Landlock + seccomp alone where user namespaces are refused."""
    def report_denials(self) -> SandboxBuilder:
        """List what the platform's sandbox denied in each result's denials (macOS)."""
    def configure(self, **options: Unpack[_Options]) -> SandboxBuilder:
        """Apply the keyword options of Sandbox(...)."""
    def build(self) -> Sandbox:
        """Check every option and build the sandbox (raises a SandboxError subclass)."""
    def explain(
        self,
        program: _StrPath,
        args: Optional[Iterable[_StrPath]] = None,
        platform: Optional[Literal["linux", "macos", "windows"]] = None,
    ) -> dict[str, Any]:
        """What a run would do on platform (default: this one), running nothing: the Explanation's fields and 'text'."""

@final
class Sandbox:
    """A built sandbox: immutable, reusable from any number of threads."""

    def __new__(cls, **options: Unpack[_Options]) -> Sandbox:
        """Build a sandbox from keyword arguments at once."""
    @staticmethod
    def builder() -> SandboxBuilder:
        """A builder with nanobox's defaults."""
    @staticmethod
    def from_config(path: _StrPath) -> Sandbox:
        """Build a sandbox from a TOML config file (raises ConfigError for a malformed file)."""
    @staticmethod
    def agent_executor(workspace: _StrPath) -> SandboxBuilder:
        """Preset: workspace read-write at /workspace (cwd and HOME), no network, 4 GiB, 512 processes, 30 min."""
    @staticmethod
    def code_judge(submission: _StrPath) -> SandboxBuilder:
        """Preset: submission read-only at /submission, strict limits, one CPU."""
    @staticmethod
    def data_analysis(input: _StrPath, output: _StrPath) -> SandboxBuilder:
        """Preset: input read-only at /input, output read-write at /output, 16 GiB."""
    def run(
        self,
        program: _Arg,
        args: Optional[Sequence[_Arg]] = None,
        stdin: _RunStdin = None,
        *,
        timeout: Optional[_Seconds] = None,
        env: Optional[_RunEnv] = None,
        cwd: Optional[_StrPath] = None,
        output_limit: Optional[int] = None,
        shell: bool = False,
        check: bool = False,
    ) -> RunResult:
        """Run to completion (the GIL is released meanwhile).

        Each option applies to this run only, over the sandbox's own:
        stdin: bytes/str data or a host file (os.PathLike); PIPE raises ValueError (use spawn).
        timeout: the wall-time limit in seconds (> 0), tighter or looser than the sandbox's;
            when it fires the outcome is "wall_time_limit" (no exception, unlike subprocess).
        env: merged over the sandbox's environment; a str value sets, None removes the variable.
        cwd: the working directory, a sandbox path (PWD is set to it).
        output_limit: bytes of captured stdout and of stderr, each.
        shell: run `program` as a command line, /bin/sh -c program (args must be None, else
            ValueError).
        check: raise CalledProcessError (a subprocess.CalledProcessError) if returncode != 0.
        """
    def shell(
        self,
        cmd: str,
        stdin: _RunStdin = None,
        *,
        timeout: Optional[_Seconds] = None,
        env: Optional[_RunEnv] = None,
        cwd: Optional[_StrPath] = None,
        output_limit: Optional[int] = None,
        check: bool = False,
    ) -> RunResult:
        """run(cmd, shell=True, ...): the command line as /bin/sh -c cmd."""
    def run_async(
        self,
        program: _Arg,
        args: Optional[Sequence[_Arg]] = None,
        stdin: _RunStdin = None,
        *,
        timeout: Optional[_Seconds] = None,
        env: Optional[_RunEnv] = None,
        cwd: Optional[_StrPath] = None,
        output_limit: Optional[int] = None,
        shell: bool = False,
        check: bool = False,
    ) -> Awaitable[RunResult]:
        """run() in the running event loop's default executor (arguments checked at the call)."""
    def spawn(
        self,
        program: _Arg,
        args: Optional[Sequence[_Arg]] = None,
        stdin: _RunStdin = None,
        *,
        timeout: Optional[_Seconds] = None,
        env: Optional[_RunEnv] = None,
        cwd: Optional[_StrPath] = None,
        output_limit: Optional[int] = None,
        shell: bool = False,
    ) -> Child:
        """Start the program and return at once; the options are run()'s.

        stdin=PIPE (or subprocess.PIPE) gives the program a pipe written through Child.stdin."""
    def bash(self) -> Bash:
        """A persistent bash in this sandbox: Bash.run(cmd) keeps cd, export and processes."""
    @property
    def degraded(self) -> list[str]:
        """What is weaker than full isolation in every run; empty normally."""
    @staticmethod
    def probe() -> dict[str, Any]:
        """{'platform': str, 'ready': bool, 'checks': [{'name', 'status', 'detail', 'required', 'used', 'fix'}]}."""
    @staticmethod
    def clean_stale() -> list[Path]:
        """Remove the cgroups of runs whose owner is gone; returns them."""

@final
class Outcome:
    """Why a program ended; equal to its status string."""

    @property
    def status(self) -> _OutcomeName: ...
    @property
    def exit_code(self) -> Optional[int]: ...
    @property
    def signal(self) -> Optional[int]: ...
    @property
    def returncode(self) -> int:
        """As RunResult.returncode: exit code, -N after signal N, -9 when a limit ended the run."""
    @property
    def success(self) -> bool: ...
    @property
    def verdict(self) -> _VerdictName: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class NetworkEvent:
    """One request through the network allowlist's proxy."""

    host: str
    port: int
    allowed: bool
    pattern: Optional[str]
    address: Optional[str]
    reason: Optional[str]
    count: int
    bytes_up: int
    bytes_down: int

@final
class Enforcement:
    """One limit and the mechanism that enforced it."""

    limit: str
    mechanism: str

@final
class RunResult:
    """What a run produced."""

    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...
    @property
    def stdout_bytes(self) -> bytes: ...
    @property
    def stderr_bytes(self) -> bytes: ...
    @property
    def stdout_truncated(self) -> bool: ...
    @property
    def stderr_truncated(self) -> bool: ...
    @property
    def outcome(self) -> _OutcomeName: ...
    @property
    def outcome_detail(self) -> Outcome: ...
    @property
    def exit_code(self) -> Optional[int]: ...
    @property
    def signal(self) -> Optional[int]: ...
    @property
    def returncode(self) -> int:
        """As subprocess.CompletedProcess.returncode: the exit code of a program that exited;
        -N for one killed by signal N; -9 (-SIGKILL) when a limit ended the run
        (wall_time_limit, cpu_time_limit, memory_limit, output_limit: see `outcome`)."""
    @property
    def args(self) -> Union[list[str], str, None]:
        """What ran, as CompletedProcess.args: [program, *args], or the shell=True command line."""
    def check_returncode(self) -> None:
        """Raise CalledProcessError (a subprocess.CalledProcessError, with .result) if returncode != 0."""
    @property
    def success(self) -> bool: ...
    @property
    def verdict(self) -> _VerdictName: ...
    @property
    def wall_time(self) -> timedelta: ...
    @property
    def cpu_time(self) -> timedelta: ...
    @property
    def peak_memory(self) -> int: ...
    @property
    def accounting(self) -> str: ...
    @property
    def limits(self) -> list[Enforcement]: ...
    @property
    def network(self) -> list[NetworkEvent]: ...
    @property
    def network_omitted(self) -> int: ...
    @property
    def degraded(self) -> list[str]: ...
    @property
    def denials(self) -> list[dict[str, Any]]: ...
    @property
    def denials_unread(self) -> Optional[str]: ...
    def to_json(self) -> str:
        """The CLI's --json report."""
    def to_dict(self) -> dict[str, Any]:
        """The JSON report as a dict."""

@final
class Child:
    """A running program: iterate for (stream, bytes) as output comes; a context manager."""

    @property
    def pid(self) -> int: ...
    @property
    def stdin(self) -> Optional[io.FileIO]:
        """With stdin=PIPE: the program's stdin, an unbuffered binary file on a real pipe (fileno()
        works with asyncio); closing it gives the program end-of-file; BrokenPipeError once the
        program ended. wait(), stop(), wait_with_output() and the with block close it. Else None."""
    @property
    def args(self) -> Union[list[str], str]:
        """What ran: [program, *args], or the shell=True command line."""
    def wait(self, timeout: Optional[_Seconds] = None) -> Outcome:
        """Close stdin, block until the end (TimeoutError after `timeout`)."""
    def try_wait(self) -> Optional[Outcome]: ...
    def poll(self) -> Optional[Outcome]: ...
    def kill(self) -> None: ...
    def signal(self, sig: Union[int, signal.Signals]) -> None:
        """Send `sig` to the program; nothing once it has ended (InvalidOptionError for 0 or > SIGRTMAX)."""
    def stop(self, grace: _Seconds = 2.0) -> Outcome:
        """Close stdin, SIGTERM, up to `grace` for the program to end, then kill; the Outcome as wait()."""
    def wait_with_output(self) -> RunResult:
        """Wait, and return the output not already taken by iteration."""
    def __iter__(self) -> Iterator[tuple[_Stream, bytes]]: ...
    def __next__(self) -> tuple[_Stream, bytes]: ...
    def __enter__(self) -> Child: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...

class SandboxError(Exception):
    """Base class of every nanobox error; str(e) is the library's message."""

class MountError(SandboxError):
    """A path was refused at build time."""

    path: str

class MountSourceMissingError(MountError): ...

class SymlinkedMountSourceError(MountError):
    link: str
    target: str

class MountSourceChangedError(SandboxError):
    path: str
    sandbox: str
    reason: str

class RelativeSandboxPathError(MountError): ...

class InvalidSandboxPathError(MountError):
    reason: str

class ReservedPathError(MountError):
    reason: str

class DuplicateMountError(MountError): ...

class InvalidOptionError(SandboxError):
    option: str
    reason: str

class UnsupportedError(SandboxError):
    what: str
    fix: str

class HostUnsupportedError(SandboxError):
    missing: str
    cause: str
    fix: str

class SetupError(SandboxError):
    step: str
    errno: Optional[int]

class ProgramNotFoundError(SandboxError):
    program: str
    searched: str

class ProgramNotExecutableError(SandboxError):
    program: str
    errno: Optional[int]

class IoError(SandboxError):
    context: str
    errno: Optional[int]

class ConfigError(SandboxError):
    path: str
    line: Optional[int]
    column: Optional[int]
    reason: str

class BashOutput:
    """What one command of a Bash did."""

    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...
    @property
    def exit_code(self) -> Optional[int]:
        """$? (130 after a timeout's interrupt); None when the shell ended before reporting one."""
    @property
    def returncode(self) -> int:
        """exit_code, or -9 when the shell ended without one."""
    @property
    def timed_out(self) -> bool: ...
    @property
    def truncated(self) -> bool: ...
    @property
    def duration(self) -> float:
        """Seconds."""
    @property
    def success(self) -> bool:
        """Exited 0 in time."""

class Bash:
    """A long-lived bash in a sandbox (Sandbox.bash()); a context manager that ends it."""

    def run(self, cmd: str, timeout: Optional[_Seconds] = None) -> BashOutput:
        """Run cmd in the shell; past the timeout (default: set_timeout's) SIGINT, then the shell is killed."""
    def set_timeout(self, timeout: Optional[_Seconds]) -> None: ...
    @property
    def alive(self) -> bool: ...
    def close(self, grace: Optional[_Seconds] = None) -> Outcome:
        """End-of-file on the shell's stdin, then kill after grace (default 2 s)."""
    def __enter__(self) -> Bash: ...
    def __exit__(self, *exc: object) -> bool: ...
