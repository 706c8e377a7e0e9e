"""scripts/install_refresh.py, run in subprocesses with a temporary HOME and XDG directories and a
fake `systemctl` and `crontab` (shell scripts that record their arguments and the crontab) on PATH."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install_refresh.py"
TEMPLATES = SCRIPT.parent / "refresh"
MARK = "# harvestkit-refresh"
UNIT = "harvestkit-refresh"

# Builtins only, so PATH can hold nothing but the fakes.
FAKE_SYSTEMCTL = r"""#!/bin/sh
printf '%s\n' "$*" >> "$FAKE_DIR/systemctl.calls"
if [ "$2" = show-environment ]; then
  if [ -e "$FAKE_DIR/no-user-manager" ]; then echo "Failed to connect to bus" >&2; exit 1; fi
  echo "PATH=/usr/bin:/bin"; exit 0
fi
if [ -e "$FAKE_DIR/systemctl-fails" ]; then echo "Failed to enable unit: boom" >&2; exit 1; fi
exit 0
"""
FAKE_CRONTAB = r"""#!/bin/sh
printf '%s\n' "$*" >> "$FAKE_DIR/crontab.calls"
case "$1" in
  -l) if [ ! -e "$FAKE_DIR/crontab" ]; then echo "no crontab for tester" >&2; exit 1; fi
      while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done < "$FAKE_DIR/crontab" ;;
  -) while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done > "$FAKE_DIR/crontab" ;;
  *) echo "fake crontab: unexpected arguments $*" >&2; exit 64 ;;
esac
"""
# Stands in for harvestkit when the cron line is run: shows what reached it.
FAKE_HARVESTKIT = r"""#!/bin/sh
printf 'args=%s home=%s proxy=%s\n' "$*" "$HARVESTKIT_HOME" "$HARVESTKIT_PROXY"
echo "a warning" >&2
"""
USER_CRONTAB = "MAILTO=me@example.org\n# my backups\n0 3 * * * /usr/local/bin/backup --all\n"


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@dataclass
class Box:
    """A temporary user: HOME, XDG dirs, a PATH of fakes, and what the fakes recorded."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def fake(self) -> Path:
        return self.root / "fake"

    @property
    def unit_dir(self) -> Path:
        return self.root / "config" / "systemd" / "user"

    @property
    def log(self) -> Path:
        return self.root / "state" / "harvestkit" / "refresh.log"

    def env(self, **changes: str | None) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "PATH": str(self.bin),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "FAKE_DIR": str(self.fake),
        }
        env.update(changes)
        return {key: value for key, value in env.items() if value is not None}

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SCRIPT), *args], env=env or self.env(), cwd=self.root,
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, umask=0o077,
            check=False,
        )

    def calls(self, tool: str) -> list[str]:
        path = self.fake / f"{tool}.calls"
        return path.read_text().splitlines() if path.exists() else []

    @property
    def crontab(self) -> str | None:
        path = self.fake / "crontab"
        return path.read_text() if path.exists() else None

    @property
    def harvestkit(self) -> str:
        return str(self.bin / "harvestkit")


@pytest.fixture
def box(tmp_path: Path) -> Box:
    box = Box(tmp_path)
    for directory in (box.home, box.fake):
        directory.mkdir()
    executable(box.bin / "systemctl", FAKE_SYSTEMCTL)
    executable(box.bin / "crontab", FAKE_CRONTAB)
    executable(box.bin / "harvestkit", FAKE_HARVESTKIT)
    return box


def template(name: str, **values: str) -> str:
    """A template of scripts/refresh/ filled in as docs/refresh.md tells people to do by hand."""
    text = (TEMPLATES / name).read_text()
    for key, value in values.items():
        if value == "":  # a placeholder alone on its line goes with its line
            text = text.replace(f"\n@{key}@\n", "\n")
        text = text.replace(f"@{key}@", value)
    assert not re.search(r"@[A-Z_]+@", text), text
    return text


def cron_line(schedule: str, harvestkit: str, log: Path, environment: str = "") -> str:
    text = template("crontab.example", SCHEDULE=schedule, ENVIRONMENT=environment,
                    HARVESTKIT=harvestkit, LOG=str(log))
    assert text.startswith("# ")
    return text.splitlines()[-1]


def files_under(root: Path) -> list[Path]:
    """Every file and directory below `root`."""
    return sorted(root.rglob("*"))


# ---- dry runs -------------------------------------------------------------------------------


def test_dry_run_systemd_prints_the_templates_filled_in_and_changes_nothing(box: Box) -> None:
    before = files_under(box.root)
    result = box.run("--systemd")
    assert result.returncode == 0, result.stderr
    service = template(f"{UNIT}.service", HARVESTKIT=box.harvestkit, ENVIRONMENT="")
    timer = template(f"{UNIT}.timer", INTERVAL="20min")
    assert result.stdout == (
        f"# write {box.unit_dir}/{UNIT}.service (mode 0644):\n{service}"
        f"# write {box.unit_dir}/{UNIT}.timer (mode 0644):\n{timer}"
        "# run: systemctl --user daemon-reload\n"
        f"# run: systemctl --user enable --now {UNIT}.timer\n"
    )
    assert "--apply" in result.stderr
    assert files_under(box.root) == before
    assert box.calls("systemctl") == []


def test_dry_run_cron_prints_the_line_and_changes_nothing(box: Box) -> None:
    (box.fake / "crontab").write_text(USER_CRONTAB)
    before = files_under(box.root)
    result = box.run("--cron")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"# create directory {box.log.parent} (mode 0700)\n"
        f"# create {box.log} if missing (mode 0600)\n"
        f"# add to your crontab (replacing any line ending in '{MARK}'):\n"
        f"{cron_line('*/20 * * * *', box.harvestkit, box.log)}\n"
    )
    assert files_under(box.root) == before
    assert box.calls("crontab") == [] and box.crontab == USER_CRONTAB


def test_the_templates_carry_the_required_settings() -> None:
    """The static examples (which the installer fills in) keep every setting asked for."""
    service = (TEMPLATES / f"{UNIT}.service").read_text()
    timer = (TEMPLATES / f"{UNIT}.timer").read_text()
    for line in ("Type=oneshot", "ExecStart=@HARVESTKIT@ refresh", "TimeoutStartSec=10min",
                 "Nice=10", "StandardInput=null", "@ENVIRONMENT@"):
        assert line in service.splitlines()
    for line in ("OnBootSec=2min", "OnUnitActiveSec=@INTERVAL@", "RandomizedDelaySec=30s",
                 "Persistent=true", "WantedBy=timers.target"):
        assert line in timer.splitlines()
    assert "[Install]" not in service  # only the timer is enabled
    assert cron_line("S", "H", Path("/L")) == f"S umask 077; H refresh >>/L 2>&1 {MARK}"  # a private log


# ---- choosing systemd or cron ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "expected"),
    [("manager", "systemd"), ("no-user-manager", "cron"), ("no-systemctl", "cron")],
)
def test_default_is_systemd_when_systemctl_user_works(box: Box, setup: str, expected: str) -> None:
    if setup == "no-user-manager":
        (box.fake / "no-user-manager").touch()
    if setup == "no-systemctl":
        (box.bin / "systemctl").unlink()
    result = box.run()
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("# write" if expected == "systemd" else "# create directory"), first
    probes = [] if setup == "no-systemctl" else ["--user show-environment"]
    assert box.calls("systemctl") == probes


# ---- systemd --------------------------------------------------------------------------------


def test_apply_systemd_writes_0644_units_and_enables_the_timer(box: Box) -> None:
    result = box.run("--systemd", "--interval", "1h", "--apply")
    assert result.returncode == 0, result.stderr
    service, timer = box.unit_dir / f"{UNIT}.service", box.unit_dir / f"{UNIT}.timer"
    assert service.read_text() == template(f"{UNIT}.service", HARVESTKIT=box.harvestkit, ENVIRONMENT="")
    assert timer.read_text() == template(f"{UNIT}.timer", INTERVAL="1h")
    assert "OnUnitActiveSec=1h" in timer.read_text().splitlines()
    # 0644 although the installer ran with umask 077
    assert [stat.S_IMODE(path.stat().st_mode) for path in (service, timer)] == [0o644, 0o644]
    assert box.calls("systemctl") == ["--user daemon-reload", f"--user enable --now {UNIT}.timer"]
    assert sorted(box.unit_dir.iterdir()) == [service, timer]
    assert "list-timers" in result.stderr


@pytest.mark.parametrize("xdg_config_home", [None, "relative/config"])
def test_units_go_to_dot_config_without_an_absolute_xdg_config_home(
    box: Box, xdg_config_home: str | None
) -> None:
    result = box.run("--systemd", "--apply", env=box.env(XDG_CONFIG_HOME=xdg_config_home))
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (box.home / ".config/systemd/user").iterdir()) == [
        f"{UNIT}.service", f"{UNIT}.timer"]
    assert not (box.root / "config").exists() and not (box.root / "relative").exists()


def test_a_failing_systemctl_exits_1_with_its_message(box: Box) -> None:
    (box.fake / "systemctl-fails").touch()
    result = box.run("--systemd", "--apply")
    assert result.returncode == 1
    assert "systemctl --user daemon-reload failed: Failed to enable unit: boom" in result.stderr


def test_uninstall_systemd_removes_only_its_units(box: Box) -> None:
    assert box.run("--systemd", "--apply").returncode == 0
    other = box.unit_dir / "other.service"
    other.write_text("[Service]\nExecStart=/bin/true\n")
    installed = box.calls("systemctl")

    dry = box.run("--uninstall")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == (
        f"# run: systemctl --user disable --now {UNIT}.timer\n"
        f"# remove {box.unit_dir}/{UNIT}.timer\n# remove {box.unit_dir}/{UNIT}.service\n"
        "# run: systemctl --user daemon-reload\n"
    )
    assert len(list(box.unit_dir.iterdir())) == 3 and box.calls("systemctl") == installed

    result = box.run("--uninstall", "--systemd", "--apply")
    assert result.returncode == 0, result.stderr
    assert list(box.unit_dir.iterdir()) == [other]
    assert box.calls("systemctl")[len(installed):] == [
        f"--user disable --now {UNIT}.timer", "--user daemon-reload"]


def test_units_pass_systemd_analyze_verify(box: Box) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    odd = executable(box.root / "odd dir%1" / "harvestkit", FAKE_HARVESTKIT)
    env = box.env(HARVESTKIT_HOME=str(box.root / "a b"), HARVESTKIT_PROXY='http://u:p%40"q@127.0.0.1:9')
    assert box.run("--systemd", "--apply", "--harvestkit", str(odd), env=env).returncode == 0
    units = [str(box.unit_dir / f"{UNIT}.{kind}") for kind in ("timer", "service")]
    result = subprocess.run(
        [analyze, "--user", "verify", *units],
        env={"PATH": "/usr/bin:/bin", "HOME": str(box.home), "XDG_RUNTIME_DIR": str(box.root)},
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )
    assert result.returncode == 0 and UNIT not in result.stderr, result.stderr


# ---- cron -----------------------------------------------------------------------------------


def test_cron_installs_its_line_once_and_uninstall_keeps_the_other_lines(box: Box) -> None:
    (box.fake / "crontab").write_text(USER_CRONTAB)
    line = cron_line("*/20 * * * *", box.harvestkit, box.log)
    for _ in range(2):
        result = box.run("--cron", "--apply")
        assert result.returncode == 0, result.stderr
        assert box.crontab == USER_CRONTAB + line + "\n"
    assert "unchanged" in result.stdout
    assert box.calls("crontab") == ["-l", "-", "-l"]  # the second run wrote nothing
    assert stat.S_IMODE(box.log.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(box.log.stat().st_mode) == 0o600
    assert str(box.log) in result.stderr

    dry = box.run("--uninstall", "--cron")
    assert dry.stdout == f"# remove from your crontab:\n{line}\n"
    assert box.crontab == USER_CRONTAB + line + "\n"

    result = box.run("--uninstall", "--apply")
    assert result.returncode == 0, result.stderr
    assert box.crontab == USER_CRONTAB
    again = box.run("--uninstall", "--apply")
    assert again.returncode == 0 and "nothing to remove" in again.stderr
    assert box.crontab == USER_CRONTAB


def test_cron_makes_an_existing_log_and_its_folder_private(box: Box) -> None:
    """The log can name profiles, paths and the proxy: a 0644 log of an older install
    (or of cron's umask) in a 0755 folder becomes 0600 in a 0700 folder."""
    box.log.parent.mkdir(parents=True, mode=0o755)
    box.log.parent.chmod(0o755)
    box.log.write_text("ok   cloudflare: 7 cookies\n")
    box.log.chmod(0o644)
    assert box.run("--cron", "--apply").returncode == 0
    assert stat.S_IMODE(box.log.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(box.log.stat().st_mode) == 0o600
    assert box.log.read_text() == "ok   cloudflare: 7 cookies\n"  # kept, only made private


def test_cron_refuses_a_symlinked_log_in_one_line(box: Box) -> None:
    box.log.parent.mkdir(parents=True)
    box.log.symlink_to(box.root / "elsewhere.log")
    result = box.run("--cron", "--apply")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: cannot use {box.log}: "), result.stderr
    assert not (box.root / "elsewhere.log").exists() and box.calls("crontab") == []


def test_cron_reinstall_replaces_its_line_in_place(box: Box) -> None:
    old = f"*/5 * * * * /old/harvestkit refresh >>/old.log 2>&1 {MARK}"
    (box.fake / "crontab").write_text(f"# mine\n{old}\n@reboot /usr/bin/true\n{old}\n")
    result = box.run("--cron", "--interval", "1h", "--apply")
    assert result.returncode == 0, result.stderr
    line = cron_line("0 */1 * * *", box.harvestkit, box.log)
    assert box.crontab == f"# mine\n{line}\n@reboot /usr/bin/true\n"


def test_cron_starts_a_crontab_when_the_user_has_none(box: Box) -> None:
    assert box.run("--cron", "--apply").returncode == 0
    assert box.crontab == cron_line("*/20 * * * *", box.harvestkit, box.log) + "\n"


def test_cron_without_crontab_on_path_fails_before_changing_anything(box: Box) -> None:
    (box.bin / "crontab").unlink()
    result = box.run("--cron", "--apply")
    assert result.returncode == 1 and "crontab not found" in result.stderr
    assert not box.log.parent.exists()


def test_the_cron_line_runs_in_a_minimal_environment(box: Box) -> None:
    """The command part, as cron hands it to /bin/sh (`\\%` -> `%`), with only HOME and PATH."""
    odd = executable(box.root / "odd dir%1" / "harvestkit", FAKE_HARVESTKIT)
    env = box.env(HARVESTKIT_HOME="hk home", HARVESTKIT_PROXY="http://u:p%40w@127.0.0.1:9")
    assert box.run("--cron", "--apply", "--harvestkit", str(odd), env=env).returncode == 0
    (line,) = (box.crontab or "").splitlines()
    command = line.split(" ", 5)[5]
    assert "%" not in command.replace("\\%", "")  # an unescaped % would end cron's command
    box.log.unlink(missing_ok=True)
    subprocess.run(["/bin/sh", "-c", command.replace("\\%", "%")], check=True, timeout=30, umask=0o022,
                   env={"HOME": str(box.home), "PATH": "/usr/bin:/bin"}, cwd=box.home)
    assert stat.S_IMODE(box.log.stat().st_mode) == 0o600  # created again by the line, under cron's umask
    assert box.log.read_text() == (
        f"args=refresh home={box.root / 'hk home'} proxy=http://u:p%40w@127.0.0.1:9\na warning\n"
    )


# ---- intervals ------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["0m", "30s", "59s", "abc", "20", "5x", "-1m", "1.5h", "", "m"])
def test_bad_intervals_exit_2_and_change_nothing(box: Box, interval: str) -> None:
    result = box.run("--systemd", "--apply", f"--interval={interval}")
    assert result.returncode == 2
    assert "argument --interval" in result.stderr
    assert ("too short" if interval in ("0m", "30s", "59s") else "invalid interval") in result.stderr
    assert box.calls("systemctl") == [] and not box.unit_dir.exists()


@pytest.mark.parametrize(
    ("interval", "span"), [("90s", "90s"), ("1m", "1min"), ("20m", "20min"), ("120m", "2h"), ("1H", "1h")]
)
def test_systemd_intervals(box: Box, interval: str, span: str) -> None:
    result = box.run("--systemd", "--interval", interval)
    assert result.returncode == 0, result.stderr
    assert f"\nOnUnitActiveSec={span}\n" in result.stdout


@pytest.mark.parametrize(
    ("interval", "schedule"),
    [("1m", "*/1 * * * *"), ("20m", "*/20 * * * *"), ("30m", "*/30 * * * *"), ("60m", "0 */1 * * *"),
     ("6h", "0 */6 * * *"), ("24h", "0 */24 * * *")],
)
def test_cron_intervals(box: Box, interval: str, schedule: str) -> None:
    result = box.run("--cron", "--interval", interval)
    assert result.returncode == 0, result.stderr
    assert f"\n{schedule} umask 077; {box.harvestkit} refresh " in result.stdout


@pytest.mark.parametrize("interval", ["90s", "45m", "7m", "5h", "48h"])
def test_cron_refuses_intervals_it_cannot_repeat(box: Box, interval: str) -> None:
    result = box.run("--cron", "--apply", "--interval", interval)
    assert result.returncode == 2
    assert "cron cannot run every" in result.stderr and "--systemd" in result.stderr
    assert "20m, 30m, 1h, 2h" in result.stderr  # what it can do instead
    assert box.calls("crontab") == []


def test_a_long_interval_warns_about_the_margin(box: Box) -> None:
    assert "margin" in box.run("--systemd", "--interval", "2h").stderr
    assert "margin" not in box.run("--systemd", "--interval", "30m").stderr


# ---- the harvestkit path and the environment -------------------------------------------------


def test_harvestkit_is_found_on_path(box: Box) -> None:
    result = box.run("--cron")
    assert f" {box.harvestkit} refresh " in result.stdout


def test_harvestkit_falls_back_to_this_venv(box: Box) -> None:
    venv_harvestkit = Path(sys.prefix) / "bin" / "harvestkit"
    if not os.access(venv_harvestkit, os.X_OK):
        pytest.skip("the test runs without harvestkit installed beside its Python")
    (box.bin / "harvestkit").unlink()
    result = box.run("--systemd")
    assert f"\nExecStart={venv_harvestkit} refresh\n" in result.stdout


def test_a_relative_harvestkit_is_made_absolute(box: Box) -> None:
    executable(box.root / "tools" / "hk", FAKE_HARVESTKIT)
    result = box.run("--systemd", "--harvestkit", "tools/hk")
    assert f"\nExecStart={box.root}/tools/hk refresh\n" in result.stdout


def test_a_missing_harvestkit_is_a_usage_error(box: Box) -> None:
    result = box.run("--systemd", "--harvestkit", "nowhere/harvestkit")
    assert result.returncode == 2 and "not an executable file" in result.stderr


def test_no_environment_is_written_when_none_is_set(box: Box) -> None:
    env = box.env(HARVESTKIT_HOME="", HARVESTKIT_NO_HARVEST="1", OTHER_SECRET="s3cret")
    systemd = box.run("--systemd", env=env).stdout
    cron = box.run("--cron", env=env).stdout
    assert "Environment=" not in systemd and "\n\n\n" not in systemd
    assert f"\n*/20 * * * * umask 077; {box.harvestkit} refresh " in cron
    assert "HARVESTKIT_" not in systemd + cron and "s3cret" not in systemd + cron


def test_the_environment_is_passed_through_when_set(box: Box) -> None:
    ca = box.root / "ca.pem"
    env = box.env(HARVESTKIT_HOME="rel/home", HARVESTKIT_PROXY="http://127.0.0.1:41235",
                  HARVESTKIT_CA_BUNDLE=str(ca), HARVESTKIT_BROWSER="harvestkit")
    service = box.run("--systemd", "--apply", env=env)
    assert service.returncode == 0, service.stderr
    environment = (
        f"Environment=HARVESTKIT_HOME={box.root}/rel/home\n"
        "Environment=HARVESTKIT_PROXY=http://127.0.0.1:41235\n"
        f"Environment=HARVESTKIT_CA_BUNDLE={ca}\n"
        f"Environment=HARVESTKIT_BROWSER={box.harvestkit}"  # a name: resolved on PATH
    )
    expected = template(f"{UNIT}.service", HARVESTKIT=box.harvestkit, ENVIRONMENT=environment)
    assert (box.unit_dir / f"{UNIT}.service").read_text() == expected
    cron = box.run("--cron", env=env).stdout.splitlines()[-1]
    assert cron == cron_line(
        "*/20 * * * *", box.harvestkit, box.log,
        f"HARVESTKIT_HOME={box.root}/rel/home HARVESTKIT_PROXY=http://127.0.0.1:41235 "
        f"HARVESTKIT_CA_BUNDLE={ca} HARVESTKIT_BROWSER={box.harvestkit} ",
    )


def test_a_proxy_password_keeps_the_service_file_private(box: Box) -> None:
    env = box.env(HARVESTKIT_PROXY="http://user:pa%25ss@127.0.0.1:3128")
    assert box.run("--systemd", "--apply", env=env).returncode == 0
    service = box.unit_dir / f"{UNIT}.service"
    assert stat.S_IMODE(service.stat().st_mode) == 0o600
    assert "\nEnvironment=HARVESTKIT_PROXY=http://user:pa%%25ss@127.0.0.1:3128\n" in service.read_text()
    assert stat.S_IMODE((box.unit_dir / f"{UNIT}.timer").stat().st_mode) == 0o644
    cron = box.run("--cron", env=env).stdout.splitlines()[-1]
    assert " HARVESTKIT_PROXY=http://user:pa\\%25ss@127.0.0.1:3128 " in cron
