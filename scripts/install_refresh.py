#!/usr/bin/env python3
"""Schedule `harvestkit refresh` for the current user: a systemd user timer or a crontab line.

Usage: python scripts/install_refresh.py [--cron | --systemd] [--interval 20m] [--apply]
                                         [--uninstall] [--harvestkit PATH]
Without --apply it prints what it would write and run, and changes nothing. The files come from the
templates in scripts/refresh/ (placeholders described in docs/refresh.md). Standard library only.
Exit codes: 0 ok, 1 failure (a command failed, harvestkit not found), 2 usage.
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

TEMPLATES = Path(__file__).resolve().parent / "refresh"
UNIT = "harvestkit-refresh"
MARKER = "# harvestkit-refresh"
PASSTHROUGH = ("HARVESTKIT_HOME", "HARVESTKIT_PROXY", "HARVESTKIT_CA_BUNDLE", "HARVESTKIT_BROWSER")
PATH_VARIABLES = ("HARVESTKIT_HOME", "HARVESTKIT_CA_BUNDLE")
UNITS = {"s": 1, "m": 60, "h": 3600}
MIN_INTERVAL = 60
DEFAULT_MARGIN = 30 * 60  # `harvestkit refresh --margin` default
CRON_INTERVALS = [f"{m}m" for m in range(1, 60) if 60 % m == 0]
CRON_INTERVALS += [f"{h}h" for h in range(1, 25) if 24 % h == 0]


class UsageError(Exception):
    """Bad arguments or settings: exit code 2."""


class InstallError(Exception):
    """A step failed: exit code 1."""


def parse_interval(text: str) -> int:
    """Seconds in `text` (`90s`, `20m`, `1h`); at least one minute."""
    match = re.fullmatch(r"(\d+)([smh])", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"invalid interval {text!r}: use a whole number and s, m or h, like 90s, 20m or 1h"
        )
    seconds = int(match[1]) * UNITS[match[2]]
    if seconds < MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"interval {text!r} is too short: the minimum is 1m")
    return seconds


def systemd_span(seconds: int) -> str:
    """`seconds` as a systemd time span: `1h`, `20min` or `90s`."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}min" if seconds % 60 == 0 else f"{seconds}s"


def cron_schedule(seconds: int) -> str:
    """The crontab schedule that runs every `seconds`; cron can only divide an hour or a day."""
    minutes, rest = divmod(seconds, 60)
    if not rest and minutes < 60 and 60 % minutes == 0:
        return f"*/{minutes} * * * *"
    if not rest and minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        return f"0 */{minutes // 60} * * *"
    raise UsageError(
        f"cron cannot run every {systemd_span(seconds)}: use one of {', '.join(CRON_INTERVALS)},"
        " or --systemd"
    )


def resolve_harvestkit(explicit: str | None) -> str:
    """Absolute path of the harvestkit executable: `explicit`, else PATH, else this venv's bin."""
    if explicit is not None:
        path = os.path.abspath(os.path.expanduser(explicit))
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise UsageError(f"--harvestkit {explicit}: {path} is not an executable file")
        return path
    for candidate in (shutil.which("harvestkit"), os.path.join(sys.prefix, "bin", "harvestkit")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    raise InstallError("harvestkit not found on PATH nor in this Python's bin: pass --harvestkit PATH")


def passthrough_env() -> dict[str, str]:
    """The HARVESTKIT_* settings refresh needs that are set (non-empty) here, paths made absolute."""
    env = {name: os.environ[name] for name in PASSTHROUGH if os.environ.get(name)}
    for name in set(PATH_VARIABLES) & set(env):
        env[name] = os.path.abspath(os.path.expanduser(env[name]))
    browser = env.get("HARVESTKIT_BROWSER")
    if browser and (found := shutil.which(browser)):  # cron's PATH is minimal
        env["HARVESTKIT_BROWSER"] = os.path.abspath(found)
    return env


def has_credentials(env: dict[str, str]) -> bool:
    """Whether the proxy URL carries a user name or password."""
    proxy = env.get("HARVESTKIT_PROXY", "")
    return "://" in proxy and "@" in urlsplit(proxy).netloc


def xdg_dir(variable: str, default: str) -> Path:
    """An XDG base directory: the variable when it holds an absolute path, else ~/`default`."""
    value = os.environ.get(variable, "")
    return Path(value) if os.path.isabs(value) else Path.home() / default


def unit_dir() -> Path:
    return xdg_dir("XDG_CONFIG_HOME", ".config") / "systemd" / "user"


def log_path() -> Path:
    return xdg_dir("XDG_STATE_HOME", ".local/state") / "harvestkit" / "refresh.log"


def render(name: str, values: dict[str, str]) -> str:
    """Template `name` with each @KEY@ replaced; a line that is only an empty placeholder goes."""
    text = (TEMPLATES / name).read_text()
    text = "".join(
        line for line in text.splitlines(keepends=True)
        if not ((only := re.fullmatch(r"@([A-Z_]+)@", line.strip())) and values.get(only[1]) == "")
    )
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    if leftover := re.search(r"@[A-Z_]+@", text):
        raise InstallError(f"template {name} has an unknown placeholder {leftover[0]}")
    return text


def systemd_quote(word: str) -> str:
    """`word` for a unit file: `%` (specifiers) doubled, quoted if needed. No `$` is expanded in
    Environment= nor in ExecStart='s executable (systemd.service(5))."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"' if re.search(r"[\s\"'\\]", word) else escaped


def cron_quote(word: str) -> str:
    """`word` quoted for the shell cron runs, with `%` (a newline to cron) escaped."""
    return shlex.quote(word).replace("%", "\\%")


def systemd_units(harvestkit: str, seconds: int, env: dict[str, str]) -> tuple[str, str]:
    """The service and timer unit texts."""
    environment = "\n".join(
        f"Environment={systemd_quote(f'{k}={v}')}" for k, v in env.items()
    )
    service = render(
        f"{UNIT}.service",
        {"HARVESTKIT": systemd_quote(harvestkit), "ENVIRONMENT": environment},
    )
    return service, render(f"{UNIT}.timer", {"INTERVAL": systemd_span(seconds)})


def crontab_line(harvestkit: str, seconds: int, env: dict[str, str], log: Path) -> str:
    """The crontab line (no newline): the one line of crontab.example that is not a comment."""
    text = render(
        "crontab.example",
        {
            "SCHEDULE": cron_schedule(seconds),
            "ENVIRONMENT": "".join(f"{k}={cron_quote(v)} " for k, v in env.items()),
            "HARVESTKIT": cron_quote(harvestkit),
            "LOG": cron_quote(str(log)),
        },
    )
    (line,) = [line for line in text.splitlines() if line and not line.startswith("#")]
    return line


@dataclass(frozen=True)
class WriteFile:
    path: Path
    text: str
    mode: int


@dataclass(frozen=True)
class MakeDir:
    """A private directory (0700, also when it exists)."""

    path: Path


@dataclass(frozen=True)
class PrivateFile:
    """A file only its owner can read (0600, also when it exists), created empty if missing: the
    cron log, whose errors can name profiles, paths and the proxy."""

    path: Path


@dataclass(frozen=True)
class RemoveFile:
    path: Path


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    check: bool = True


@dataclass(frozen=True)
class EditCrontab:
    """Put `line` in the crontab in place of the marked lines; None removes them (`old`)."""

    line: str | None
    old: tuple[str, ...] = ()


Action = WriteFile | MakeDir | PrivateFile | RemoveFile | Run | EditCrontab


def command(argv: tuple[str, ...], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `argv` with `stdin` as its input (no terminal), capturing its output."""
    try:
        return subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"cannot run {shlex.join(argv)}: {exc}") from None


def systemd_usable() -> bool:
    """Whether `systemctl --user` reaches a user service manager."""
    if not shutil.which("systemctl"):
        return False
    try:
        return command(("systemctl", "--user", "show-environment")).returncode == 0
    except InstallError:
        return False


def read_crontab() -> list[str]:
    """The current user's crontab lines ([] when there is none)."""
    result = command(("crontab", "-l"))
    if result.returncode == 0:
        return result.stdout.splitlines()
    if "no crontab" in result.stderr.lower():
        return []
    raise InstallError(f"crontab -l failed: {result.stderr.strip()}")


def ours(line: str) -> bool:
    return line.rstrip().endswith(MARKER)


def edited_crontab(lines: list[str], line: str | None) -> list[str]:
    """`lines` with our marked lines replaced by `line` (in place of the first) or removed."""
    kept = [current for current in lines if not ours(current)]
    if line is not None:  # lines before the first marked one are all kept: same index
        kept.insert(next((i for i, current in enumerate(lines) if ours(current)), len(kept)), line)
    return kept


def describe(action: Action) -> str:
    """What `action` would do, for a dry run."""
    if isinstance(action, WriteFile):
        return f"# write {action.path} (mode {action.mode:04o}):\n{action.text}"
    if isinstance(action, MakeDir):
        return f"# create directory {action.path} (mode 0700)\n"
    if isinstance(action, PrivateFile):
        return f"# create {action.path} if missing (mode 0600)\n"
    if isinstance(action, RemoveFile):
        return f"# remove {action.path}\n"
    if isinstance(action, Run):
        return f"# run: {shlex.join(action.argv)}\n"
    if action.line is None:
        return "# remove from your crontab:\n" + "".join(f"{line}\n" for line in action.old)
    return f"# add to your crontab (replacing any line ending in {MARKER!r}):\n{action.line}\n"


def execute(action: Action) -> str:
    """Do `action`; returns what was done."""
    if isinstance(action, WriteFile):
        action.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=action.path.parent, prefix=f".{action.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(action.text)
                os.fchmod(handle.fileno(), action.mode)  # whatever the umask
            os.replace(tmp, action.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f"wrote {action.path} (mode {action.mode:04o})"
    if isinstance(action, MakeDir):
        action.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        action.path.chmod(0o700)
        return f"directory {action.path} ready (mode 0700)"
    if isinstance(action, PrivateFile):
        fd = os.open(action.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask, and a log made 0644 before
        finally:
            os.close(fd)
        return f"{action.path} ready (mode 0600)"
    if isinstance(action, RemoveFile):
        action.path.unlink(missing_ok=True)
        return f"removed {action.path}"
    if isinstance(action, Run):
        result, shown = command(action.argv), shlex.join(action.argv)
        if result.returncode and action.check:
            raise InstallError(f"{shown} failed: {result.stderr.strip()}")
        return f"ignored: {shown} failed" if result.returncode else f"ran: {shown}"
    lines = read_crontab()
    new = edited_crontab(lines, action.line)
    if new == lines:
        return "crontab: unchanged (already up to date)"
    result = command(("crontab", "-"), stdin="".join(f"{line}\n" for line in new))
    if result.returncode:
        raise InstallError(f"crontab - failed: {result.stderr.strip()}")
    return "crontab: harvestkit-refresh line " + ("removed" if action.line is None else "installed")


def install_plan(mode: str, args: argparse.Namespace) -> tuple[list[Action], list[str]]:
    """Actions to install, and notes for afterwards."""
    harvestkit, env = resolve_harvestkit(args.harvestkit), passthrough_env()
    if args.interval > DEFAULT_MARGIN:
        print("warning: refresh renews what expires within its --margin (30m by default); with a"
              " longer interval a session can lapse between runs", file=sys.stderr)
    if mode == "cron":
        line = crontab_line(harvestkit, args.interval, env, log_path())
        return [MakeDir(log_path().parent), PrivateFile(log_path()), EditCrontab(line)], [f"log: {log_path()}"]
    service, timer = systemd_units(harvestkit, args.interval, env)
    service_mode = 0o600 if has_credentials(env) else 0o644  # the proxy password stays private
    notes = [f"check: systemctl --user list-timers {UNIT}.timer",
             f"log: journalctl --user -u {UNIT}.service"]
    if not Path("/var/lib/systemd/linger", getpass.getuser()).exists():
        notes.append("it runs only while you are logged in; to run it always: loginctl enable-linger")
    return [
        WriteFile(unit_dir() / f"{UNIT}.service", service, service_mode),
        WriteFile(unit_dir() / f"{UNIT}.timer", timer, 0o644),
        Run(("systemctl", "--user", "daemon-reload")),
        Run(("systemctl", "--user", "enable", "--now", f"{UNIT}.timer")),
    ], notes


def uninstall_plan(mode: str | None) -> list[Action]:
    """Actions removing what the installer put in place (for `mode`, or wherever it is found)."""
    actions: list[Action] = []
    units = [unit_dir() / f"{UNIT}.timer", unit_dir() / f"{UNIT}.service"]
    if mode != "cron" and any(path.exists() for path in units):
        actions = [RemoveFile(path) for path in units if path.exists()]
        if shutil.which("systemctl"):  # else there is no manager to tell: just remove the files
            stop = Run(("systemctl", "--user", "disable", "--now", f"{UNIT}.timer"), check=False)
            actions = [stop, *actions, Run(("systemctl", "--user", "daemon-reload"), check=False)]
    if mode == "cron" or (mode is None and shutil.which("crontab")):
        old = tuple(line for line in read_crontab() if ours(line))
        if old:
            actions.append(EditCrontab(None, old))
    return actions


def check_tools(actions: list[Action]) -> None:
    """Fail before changing anything if a command the actions need is missing."""
    needed = {a.argv[0] for a in actions if isinstance(a, Run) and a.check}
    needed |= {"crontab"} if any(isinstance(a, EditCrontab) for a in actions) else set()
    if missing := sorted(name for name in needed if not shutil.which(name)):
        raise InstallError(f"{', '.join(missing)} not found on PATH")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Schedule `harvestkit refresh` for the current user (systemd user timer or cron).",
        epilog="Without --apply, prints what it would write and run, and changes nothing.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--systemd", dest="mode", action="store_const", const="systemd",
                       help="a systemd user service and timer (default when systemctl --user works)")
    where.add_argument("--cron", dest="mode", action="store_const", const="cron",
                       help="a line in your crontab (the default otherwise)")
    parser.add_argument("--interval", type=parse_interval, default=parse_interval("20m"),
                        help="how often: 90s, 20m, 1h... (default 20m, minimum 1m)")
    parser.add_argument("--apply", action="store_true", help="do it (default: only print)")
    parser.add_argument("--uninstall", action="store_true", help="remove what this installed")
    parser.add_argument("--harvestkit", metavar="PATH",
                        help="the harvestkit executable (default: found on PATH, else this venv's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.uninstall:
            actions, notes = uninstall_plan(args.mode), []
        else:
            mode = args.mode or ("systemd" if systemd_usable() else "cron")
            actions, notes = install_plan(mode, args)
        if not actions:
            print("nothing to remove: no harvestkit-refresh units or crontab line", file=sys.stderr)
        elif not args.apply:
            sys.stdout.write("".join(describe(action) for action in actions))
            print("dry run: nothing changed; add --apply to do this", file=sys.stderr)
            return 0
        check_tools(actions)
        for action in actions:
            print(execute(action))
    except UsageError as exc:
        parser.error(str(exc))
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a directory or file it cannot create or make private
        print(f"error: cannot use {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    for note in notes:
        print(note, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
