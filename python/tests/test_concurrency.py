"""The GIL is released while a run executes; run_async."""

import asyncio
import threading
import time

import pytest

import nanobox
from nanobox import Sandbox


def test_threads_run_sandboxes_in_parallel(sandbox):
    results = []

    def worker():
        results.append(sandbox.run("sleep", ["1"]))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert [r.outcome for r in results] == ["exited"] * 4
    assert all(r.wall_time.total_seconds() >= 0.9 for r in results)
    assert elapsed < 2.5, f"4 x sleep 1 took {elapsed:.2f} s: the GIL was not released"


def test_python_threads_keep_running_during_a_run(sandbox):
    # A pure-Python counter in another thread advances while run() blocks.
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.01)

    t = threading.Thread(target=count)
    t.start()
    sandbox.run("sleep", ["0.5"])
    stop.set()
    t.join()
    assert ticks[0] >= 20


def test_run_async_runs_concurrently(sandbox):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        tick = asyncio.ensure_future(ticker())
        start = time.monotonic()
        results = await asyncio.gather(*(sandbox.run_async("sleep", ["1"]) for _ in range(3)))
        elapsed = time.monotonic() - start
        tick.cancel()
        return results, elapsed, ticks

    results, elapsed, ticks = asyncio.run(main())
    assert [r.outcome for r in results] == ["exited"] * 3
    assert isinstance(results[0], nanobox.RunResult)
    assert elapsed < 2.5
    assert ticks >= 10  # the event loop kept running


def test_run_async_output_stdin_and_errors(sandbox):
    async def main():
        r = await sandbox.run_async("cat", [], "async in")
        assert r.stdout == "async in"
        with pytest.raises(nanobox.ProgramNotFoundError):
            await sandbox.run_async("no-such-program")
        with pytest.raises(TypeError):
            await sandbox.run_async("echo", "not a list")

    asyncio.run(main())
