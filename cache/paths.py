"""Where the auth cache lives, and its private-files-only policy.

Location: ``$HARVESTKIT_HOME/sessions`` when HARVESTKIT_HOME is set, else
``platformdirs.user_data_dir("harvestkit")/sessions`` (e.g. ~/.local/share/harvestkit/sessions),
unless `AuthCache(root=...)` names the directory itself. Layout below the root::

    <site>/<profile>.json          the record (JSON, replaced atomically)
    <site>/<profile>.lock          record lock (filelock), taken by every write
    <site>/<profile>.refresh.lock  single-flight lock, held for a whole harvest
    <site>/<profile>[.refresh].lock.holder  pid of the process holding that lock
    <site>/<profile>.json.corrupt-<UTC time>  a quarantined unreadable record

Permissions policy (like OpenSSH with private keys): the cache holds secrets, so it is
owner-only. Directories are created 0700 and files 0600 from the first moment, whatever
the umask (created with that mode, then fchmod'ed to add back owner bits a umask may have
removed). A cache directory or record file that grants group or other *any* permission
is refused, never silently fixed: the operation raises `CachePermissionError` naming the
path, its mode and the exact ``chmod`` command that fixes it. Only the cache's own
directories are checked, not their parents. Symbolic links are not followed below the root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

from .errors import CacheError, CachePermissionError, CacheWriteError

ENV_HOME = "HARVESTKIT_HOME"
DIR_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = 0o077
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def default_root() -> Path:
    """The cache directory used when `AuthCache` is given no root."""
    home = os.environ.get(ENV_HOME)
    base = Path(home).expanduser() if home else Path(platformdirs.user_data_dir("harvestkit"))
    return base / "sessions"


def check_private(path: Path, st: os.stat_result) -> None:
    """Refuse `path` if group or other has any permission on it."""
    if st.st_mode & _OTHERS:
        fix = DIR_MODE if stat.S_ISDIR(st.st_mode) else FILE_MODE
        raise CachePermissionError(path, stat.S_IMODE(st.st_mode), fix)


def ensure_private_dir(path: Path, *, create: bool = True) -> bool:
    """Verify the owner-only directory `path`, creating it 0700 if missing and `create`.

    Returns whether the directory exists. Missing parents are created with the user's
    usual permissions (they are not the cache's), except harvestkit's own data folder (the
    parent of the default root), which is created 0700 as well.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if not create:
            return False
        try:
            if path.parent == default_root().parent and not path.parent.exists():
                ensure_private_dir(path.parent)  # harvestkit's own data folder: private too
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(path, DIR_MODE)  # the umask can only take bits away: never open to others
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) != DIR_MODE:
                os.chmod(path, DIR_MODE)  # give back owner bits a umask took away
        except FileExistsError:
            pass  # another process made it first; verified below like any existing one
        except OSError as exc:
            raise CacheWriteError(path, exc, "create") from None
        st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise CacheError(f"{path} is not a directory")
    check_private(path, st)
    return True


def create_private(path: Path, *, exclusive: bool) -> int:
    """Open `path` for writing as a 0600 file (never following a symlink); returns the fd."""
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_private(path: Path) -> bytes | None:
    """The content of the owner-only file `path`, or None if it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CacheError(
                f"refusing to read {path}: it is a symbolic link, and harvestkit follows none in its cache; "
                f"replace it with the file itself (mv \"$(readlink -f {path})\" {path})"
            ) from None
        raise CacheError(f"cannot open {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CacheError(f"{path} is not a regular file")
        check_private(path, st)
        chunks = []
        while chunk := os.read(fd, max(st.st_size, 65536)):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_existing_private(path: Path) -> None:
    """Refuse to replace an existing `path` that is open to others (it is not fixed silently)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise CacheError(f"{path} is a symbolic link; refusing to follow it: replace it with the file itself")
    check_private(path, st)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably (the caller holds its lock).

    Written to a 0600 temp file beside it, flushed and fsync'd, renamed over `path`, and the
    directory fsync'd: a reader sees the old file or the new one, never a part.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)  # left by a writer that was killed; only the lock holder writes it
        fd = create_private(tmp, exclusive=True)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise CacheWriteError(path, exc) from None


def quarantine(path: Path) -> Path:
    """Move `path` aside as `<name>.corrupt-<UTC time>`; returns the new path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, target)
    fsync_dir(path.parent)
    return target
