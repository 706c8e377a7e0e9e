"""SIGTERM at each kind of moment of a command (`cli.termination`): the command's teardown runs, it
exits 143, and nothing is printed but what the command prints itself: never a traceback.

Each case is a small command run in a subprocess that sends itself SIGTERM at that moment, so the
moment is exact (the chaos script, scripts/chaos_browser.py --signals, covers random moments of
the real commands)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import asyncio, os, signal, sys
from harvestkit.cli.common import command

def terminate():
    os.kill(os.getpid(), signal.SIGTERM)

@command
def run(args):
    BODY
    return 0

sys.exit(run(None))
"""


def run_command(body: str) -> subprocess.CompletedProcess[str]:
    code = PRELUDE.replace("    BODY\n", textwrap.indent(textwrap.dedent(body), "    "))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_during_the_main_task_cancels_it_and_its_teardown_runs_to_the_end(sigint: str) -> None:
    """SIGINT ignored: a background job (`harvestkit harvest cloudflare &` in a script), where
    asyncio.run installs no Ctrl-C handler of its own."""
    setup = "signal.signal(signal.SIGINT, signal.SIG_IGN)" if sigint == "ignored" else "pass"
    done = run_command("""
        SETUP
        async def main():
            try:
                terminate()
                await asyncio.sleep(30)
            finally:
                terminate()  # a second SIGTERM must not cut the teardown short
                await asyncio.sleep(0.05)
                print("teardown ran")
        asyncio.run(main())
        print("not reached")
    """.replace("SETUP", setup))
    assert (done.returncode, done.stdout, done.stderr) == (143, "teardown ran\n", "")


def test_sigterm_while_asyncio_run_cancels_the_tasks_left_over_prints_no_traceback() -> None:
    """How `chat` printed "Task exception was never retrieved ... KeyboardInterrupt": the main
    task had finished, and asyncio.run was cancelling a connection's task, whose clean-up takes a
    while, when SIGTERM came."""
    done = run_command("""
        async def connection():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                terminate()
                for _ in range(20):  # a clean-up that takes a while (closing a connection)
                    await asyncio.sleep(0.01)
                print("clean-up finished")
                raise
        async def main():
            asyncio.get_running_loop().create_task(connection())
            await asyncio.sleep(0.01)
        asyncio.run(main())
    """)
    assert (done.returncode, done.stdout, done.stderr) == (143, "clean-up finished\n", "")


def test_sigterm_inside_a_finaliser_prints_no_traceback() -> None:
    """A KeyboardInterrupt raised inside `__del__` cannot propagate: Python would print it as
    "Exception ignored in ..." with a traceback."""
    done = run_command("""
        class Resource:
            def __del__(self):
                terminate()
                sum(range(100_000))  # the handler runs here, inside the finaliser
        Resource()
        print("after")
    """)
    assert done.returncode == 143
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


@pytest.mark.parametrize("where", ["synchronous code", "between two asyncio.run"])
def test_sigterm_in_synchronous_code_stops_the_command(where: str) -> None:
    body = (
        """
        terminate()
        import time; time.sleep(30)
        print("not reached")
        """
        if where == "synchronous code"
        else """
        async def nothing():
            pass
        asyncio.run(nothing())
        terminate()
        asyncio.run(asyncio.sleep(30))
        print("not reached")
        """
    )
    done = run_command(body)
    assert (done.returncode, done.stdout, done.stderr) == (143, "", "")
