"""The root of harvestkit's error tree, and the errors of the auth cache.

It lives in the lowest layer (the cache) so that every other part can derive from it
without import cycles; `harvestkit.client` re-exports the whole tree.

No message built here ever contains a secret: callers pass paths, modes, versions,
field names and line numbers, never cookie values or API keys.
"""

from __future__ import annotations

import errno
import shlex
from pathlib import Path


class HarvestkitError(Exception):
    """Base class of every error harvestkit raises on purpose."""


class CacheError(HarvestkitError):
    """Base class of the auth cache's errors."""


class CachePermissionError(CacheError):
    """A cache file or directory is open to group/other (refused, like OpenSSH's private keys)."""

    def __init__(self, path: Path, mode: int, fix_mode: int) -> None:
        self.path = Path(path)
        self.mode = mode
        self.fix = f"chmod {fix_mode:o} {shlex.quote(str(self.path))}"
        super().__init__(
            f"refusing to use {self.path}: its mode is {mode:04o}, but the harvestkit cache holds "
            f"secrets and must be accessible by its owner only. Fix it with: {self.fix}"
        )


class CacheLockTimeout(CacheError, TimeoutError):
    """A cache lock could not be taken within the timeout."""

    def __init__(self, path: Path, timeout: float, holder_pid: int | None) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.holder_pid = holder_pid
        holder = f"pid {holder_pid}" if holder_pid is not None else "an unknown process"
        super().__init__(f"timed out after {timeout:g} s waiting for lock {self.path}, held by {holder}")


class CacheSchemaError(CacheError):
    """A record was written by a newer harvestkit (a schema version this code does not know)."""

    def __init__(self, found: int, supported: int, path: Path | None = None) -> None:
        self.found = found
        self.supported = supported
        self.path = path
        where = f"{path} has" if path is not None else "the record has"
        super().__init__(
            f"{where} schema version {found}, but this harvestkit supports up to version {supported}: "
            "upgrade harvestkit (the file is left untouched)"
        )


class CacheCorruptError(CacheError, ValueError):
    """A record's data is not a valid record (wrong types, missing fields)."""


class CookieFormatError(CacheError, ValueError):
    """Cookie input (a Set-Cookie header or a cookie file) could not be parsed."""

    def __init__(self, message: str, line: int | None = None, fmt: str | None = None) -> None:
        self.line = line
        self.fmt = fmt
        prefix = f"{fmt} cookies" if fmt else "cookies"
        where = f", line {line}" if line is not None else ""
        super().__init__(f"{prefix}{where}: {message}")


_WRITE_FIXES = {
    errno.EROFS: "the file system is read-only: remount it read-write, or set HARVESTKIT_HOME to a writable directory",
    errno.ENOSPC: "the disk is full: free some space, or set HARVESTKIT_HOME to another disk",
    errno.EDQUOT: "the disk quota is used up: free some space, or set HARVESTKIT_HOME to another disk",
    errno.EACCES: "no permission: check the owner and mode of the directory (ls -ld), or set HARVESTKIT_HOME",
    errno.EPERM: "no permission: check the owner and mode of the directory (ls -ld), or set HARVESTKIT_HOME",
}


class CacheWriteError(CacheError, OSError):
    """The cache could not be written (read-only, full, no permission): names the path and cause."""

    def __init__(self, path: Path, error: OSError, action: str = "write") -> None:
        self.path = Path(path)
        self.cause = error.strerror or str(error)
        fix = _WRITE_FIXES.get(error.errno or 0, "check the directory, or set HARVESTKIT_HOME to another one")
        CacheError.__init__(self, f"cannot {action} {self.path}: {self.cause}; {fix}")
        self.errno, self.strerror, self.filename = error.errno, self.cause, str(self.path)

    def __str__(self) -> str:
        return str(self.args[0])


class CookieImportError(CacheError, ValueError):
    """A cookie file was refused as a whole (too large, not text, no cookie for the site...)."""


class CacheCorruptWarning(UserWarning):
    """An unreadable record was moved aside and treated as no session."""
