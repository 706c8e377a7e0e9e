"""The third-party bot detectors the sandbox's challenges run: pinned npm packages, fetched once.

`@fingerprintjs/botd` and `fpscanner` come from the npm registry through `npm pack` (Debian's
`npm` package provides it), each checked against the sha512 integrity pinned here, into a cache
folder outside the repository (`HARVESTKIT_DETECTORS_DIR`, else the user cache dir). Only the
browser build of each is kept. `make test` and `make demo` fetch them (`make detectors`, which
calls `main()`); a sandbox that starts without them fetches them then.

The sandbox is the site owner here: like fpscanner's own `build --key`, it injects its own
payload key into fpscanner's build. Nothing of the detection logic is changed.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from harvestkit.cache.errors import HarvestkitError


@dataclass(frozen=True)
class Detector:
    """One npm package and the browser module taken from it."""

    name: str  # short name, used in verdicts and URLs
    package: str
    version: str
    integrity: str  # npm's "sha512-<base64>" of the tarball
    module: str  # path of the ES module inside the tarball

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}.js"


BOTD = Detector(
    name="botd",
    package="@fingerprintjs/botd",
    version="2.0.0",
    integrity="sha512-yhuz23NKEcBDTHmGz/ULrXlGnbHenO+xZmVwuBkuqHUkqvaZ5TAA0kAgcRy4Wyo5dIBdkIf57UXX8/c9UlMLJg==",
    module="package/dist/botd.esm.js",
)
FPSCANNER = Detector(
    name="fpscanner",
    package="fpscanner",
    version="1.0.2",
    integrity="sha512-AfDVyPvQr1uZ0A+feNjecA+Kl7dsiHwLNdGqapwxkngK2URAvo2v0Ld38vIcDc3v2FxgMqy8h9qMHqx2R343gg==",
    module="package/dist/fpScanner.es.js",
)
DETECTORS = (BOTD, FPSCANNER)
FPSCANNER_KEY_SLOT = "__DEFAULT_FPSCANNER_KEY__"  # what `fpscanner build --key` replaces
NPM_TIMEOUT = 120.0


class DetectorsUnavailable(HarvestkitError, RuntimeError):
    """The detectors are not in the cache and cannot be fetched; the message says how to fix it."""


def detectors_dir() -> Path:
    """Where the fetched detector modules are kept."""
    configured = os.environ.get("HARVESTKIT_DETECTORS_DIR")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_cache_dir("harvestkit")) / "detectors"


def integrity_of(data: bytes) -> str:
    """npm's integrity string (sha512) of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def module_from_tarball(detector: Detector, tarball: bytes) -> bytes:
    """The detector's browser module out of its npm tarball, after checking the pinned integrity."""
    found = integrity_of(tarball)
    if found != detector.integrity:
        raise DetectorsUnavailable(
            f"{detector.spec}: the tarball's integrity {found[:24]}... is not the pinned {detector.integrity[:24]}..."
        )
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile(detector.module)
        if member is None:
            raise DetectorsUnavailable(f"{detector.spec}: {detector.module} is missing from the tarball")
        return member.read()


def _npm_pack(detector: Detector, workdir: Path) -> bytes:
    npm = shutil.which("npm")
    if npm is None:
        raise DetectorsUnavailable(
            f"cannot fetch {detector.spec}: npm is not installed (Debian: `apt-get install -y nodejs npm`, "
            "or run `make detectors`)"
        )
    try:
        done = subprocess.run(
            [npm, "pack", detector.spec, "--json", "--pack-destination", str(workdir)],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DetectorsUnavailable(f"npm pack {detector.spec} took over {NPM_TIMEOUT:g} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DetectorsUnavailable(f"npm pack {detector.spec} failed: {last[:300]}")
    try:
        filename = json.loads(done.stdout)[0]["filename"]
    except (ValueError, LookupError, TypeError):
        raise DetectorsUnavailable(f"npm pack {detector.spec} printed no tarball name") from None
    return (workdir / filename).read_bytes()


def fetch(directory: Path | None = None, *, force: bool = False) -> Path:
    """Make sure every detector module is in `directory` (npm pack, integrity-checked); return it."""
    directory = directory or detectors_dir()
    missing = [d for d in DETECTORS if force or not (directory / d.filename).is_file()]
    if not missing:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="harvestkit-npm-") as tmp:
        for detector in missing:
            module = module_from_tarball(detector, _npm_pack(detector, Path(tmp)))
            partial = directory / f".{detector.filename}.{os.getpid()}"
            partial.write_bytes(module)
            os.replace(partial, directory / detector.filename)  # concurrent fetchers: last one wins
    return directory


@dataclass(frozen=True)
class DetectorAssets:
    """The modules the challenge serves, by detector name, with the site's fpscanner key."""

    modules: dict[str, bytes]
    fpscanner_key: str


def load(fpscanner_key: str, directory: Path | None = None) -> DetectorAssets:
    """The detector modules (fetched first if missing), fpscanner built with `fpscanner_key`."""
    directory = fetch(directory)
    modules = {d.name: (directory / d.filename).read_bytes() for d in DETECTORS}
    fpscanner = modules[FPSCANNER.name]
    if fpscanner.count(FPSCANNER_KEY_SLOT.encode()) != 1:
        raise DetectorsUnavailable(f"{FPSCANNER.spec}: its build has no single key slot to fill")
    modules[FPSCANNER.name] = fpscanner.replace(FPSCANNER_KEY_SLOT.encode(), fpscanner_key.encode())
    return DetectorAssets(modules, fpscanner_key)


def _xor(data: bytes, key: str) -> bytes:
    key_bytes = key.encode()
    return bytes(b ^ key_bytes[i % len(key_bytes)] for i, b in enumerate(data))


def encrypt_fpscanner(fingerprint: dict[str, object], key: str) -> str:
    """A fingerprint encrypted as fpscanner's `collectFingerprint()` sends it (for tests and forgers)."""
    return base64.b64encode(_xor(json.dumps(json.dumps(fingerprint)).encode(), key)).decode()


def decrypt_fpscanner(payload: str, key: str) -> dict[str, object]:
    """fpscanner's encrypted payload (base64 of the JSON XORed with the key) as its fingerprint."""
    decoded = json.loads(_xor(base64.b64decode(payload, validate=True), key).decode("utf-8"))
    if isinstance(decoded, str):  # fpscanner JSON-encodes the JSON text once more
        decoded = json.loads(decoded)
    if not isinstance(decoded, dict):
        raise ValueError("the fingerprint is not a JSON object")
    return decoded


def main() -> int:
    """`make detectors` (`--force`: fetch again): the detectors into the cache, one line of output."""
    try:
        directory = fetch(force="--force" in sys.argv[1:])
    except (DetectorsUnavailable, OSError) as exc:
        print(f"harvestkit: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(d.spec for d in DETECTORS)
    print(f"detectors ready in {directory}: {names}")
    return 0

