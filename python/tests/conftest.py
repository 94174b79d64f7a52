"""Shared fixtures of the nanobox Python tests."""

import shutil

import pytest

import nanobox


@pytest.fixture(scope="session")
def probe():
    """The host report (nanobox doctor)."""
    return nanobox.Sandbox.probe()


@pytest.fixture(autouse=True)
def _host_can_run(probe):
    if not probe["ready"]:
        pytest.fail("this host cannot start sandboxes: " + repr(probe))


@pytest.fixture
def sandbox():
    """A plain sandbox with a wall-time limit so that no test can hang."""
    return nanobox.Sandbox(wall_time_limit=60)


def need(program):
    """Skip unless `program` is installed on the host (it is mounted read-only in the sandbox)."""
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed")
