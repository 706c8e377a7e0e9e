"""A virtual display (Xvfb) for a visible browser on a machine without a screen (tests, `doctor`).

Debian's `xvfb` package provides it (`make test` installs it). The server picks a free display
number itself (`-displayfd`) and is stopped and reaped on exit.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from typing import Self

from harvestkit.cache.errors import HarvestkitError

START_TIMEOUT = 10.0


class XvfbUnavailable(HarvestkitError, RuntimeError):
    """Xvfb is not installed or did not start; the message says which."""


class Xvfb:
    """`with Xvfb((1920, 1080)) as screen: os.environ["DISPLAY"] = screen.display`."""

    def __init__(self, size: tuple[int, int] = (1920, 1080)) -> None:
        self.size = size
        self.display = ""
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        binary = shutil.which("Xvfb")
        if binary is None:
            raise XvfbUnavailable("Xvfb is not installed (Debian: `apt-get install -y xvfb`)")
        read, write = os.pipe()
        try:
            self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
                [binary, "-displayfd", str(write), "-screen", "0", f"{self.size[0]}x{self.size[1]}x24", "-nolisten", "tcp"],
                pass_fds=(write,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            os.close(write)
            write = -1
            number = self._read_display(read)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(read)
            if write >= 0:
                os.close(write)
        self.display = f":{number}"
        return self

    def _read_display(self, fd: int) -> str:
        deadline, data = time.monotonic() + START_TIMEOUT, b""
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise XvfbUnavailable(f"Xvfb did not start in {START_TIMEOUT:g} s")
            chunk = os.read(fd, 64)
            if not chunk:
                raise XvfbUnavailable("Xvfb exited at start")
            data += chunk
        return data.decode().strip()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
