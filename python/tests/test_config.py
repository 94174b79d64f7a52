"""Config files: Sandbox.from_config and SandboxBuilder.from_config read the CLI's TOML files."""

import pytest

import nanobox
from nanobox import Sandbox, SandboxBuilder


def write_config(tmp_path, text):
    path = tmp_path / "nanobox.toml"
    path.write_text(text)
    return path


def test_from_config_builds_a_sandbox_with_the_file_s_mounts_env_and_limits(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "n.txt").write_text("42\n")
    (tmp_path / "vars.env").write_text("# comment\nexport FROM_FILE=file value\n")
    path = write_config(
        tmp_path,
        'env_file = "vars.env"\nhostname = "cfgbox"\n[env]\nMODE = "fast"\n'
        '[limits]\ntimeout = "1s"\n[[mount]]\nhost = "data"\nsandbox = "/data"\n',
    )
    sandbox = Sandbox.from_config(path)
    r = sandbox.run("sh", ["-c", 'cat /data/n.txt; echo "$MODE|$FROM_FILE"; hostname'])
    assert r.stdout == "42\nfast|file value\ncfgbox\n"
    # The file's wall-time limit is in force.
    assert sandbox.run("sleep", ["5"]).outcome == "wall_time_limit"
    # A str path works as well as a Path.
    assert Sandbox.from_config(str(path)).run("cat", ["/data/n.txt"]).stdout == "42\n"


def test_builder_from_config_lets_calls_override_the_file(tmp_path):
    path = write_config(tmp_path, '[env]\nMODE = "file"\n[limits]\ntimeout = "1s"\n')
    builder = SandboxBuilder.from_config(path)
    assert isinstance(builder, SandboxBuilder)
    sandbox = builder.env("MODE", "call").wall_time_limit(30).build()
    r = sandbox.run("sh", ["-c", 'sleep 1.5; echo "$MODE"'])
    assert (r.outcome, r.stdout) == ("exited", "call\n")


def test_an_unknown_key_raises_config_error_with_the_line_and_allowed_keys(tmp_path):
    path = write_config(tmp_path, 'hostname = "h"\n[limits]\nmemroy = "64M"\n')
    with pytest.raises(nanobox.ConfigError) as info:
        Sandbox.from_config(path)
    e = info.value
    assert isinstance(e, nanobox.SandboxError)
    assert (e.path, e.line, e.column) == (str(path), 3, 1)
    assert "unknown field `memroy`" in e.reason and "`memory`" in e.reason
    assert str(e).startswith(f"config file {path}, line 3, column 1: unknown field `memroy`")
    with pytest.raises(nanobox.ConfigError) as info:
        SandboxBuilder.from_config(tmp_path / "missing.toml")
    assert info.value.line is None and "cannot read it" in info.value.reason
