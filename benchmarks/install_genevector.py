"""Install the peer genevector==1.0.0 (its numpy and numba MI backends) into the running Python.

Why a script: on PyPI, genevector 1.0.0 ships a Rust source distribution (its build needs the
Rust crate registry), macOS wheels, and one Linux wheel tagged cp38 whose metadata requires
Python >= 3.9, so pip never selects anything on Linux with Python >= 3.9. The wheel's Python code
runs fine; only its compiled Rust kernel is tied to CPython 3.8. This script downloads that
wheel, drops the compiled module, re-tags it ``py3-none-any`` and installs it without
dependencies (its needs are in the ``bench`` extra). The peer is never vendored into geneverse.

Usage: ``python benchmarks/install_genevector.py`` (exit status 1 with a message if it fails).
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PEER = "genevector==1.0.0"
WHEEL_TAG = "Wheel-Version: 1.0\nGenerator: geneverse-retag\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def retag(source: Path, target: Path) -> None:
    """Copy the wheel without compiled modules, with a pure-Python tag and a fresh RECORD."""
    with zipfile.ZipFile(source) as wheel:
        members = {name: wheel.read(name) for name in wheel.namelist() if not name.endswith((".so", ".pyd", "RECORD"))}
    dist_info = next(name.split("/")[0] for name in members if name.split("/")[0].endswith(".dist-info"))
    members[f"{dist_info}/WHEEL"] = WHEEL_TAG.encode()
    record = [record_line(name, data) for name, data in members.items()] + [f"{dist_info}/RECORD,,"]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
        wheel.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        try:
            pip(
                "download", "-q", "--no-deps", "--ignore-requires-python", "--only-binary", ":all:",
                "--platform", "manylinux2014_x86_64", "--python-version", "3.8", "--implementation", "cp",
                "--abi", "cp38", PEER, "-d", str(directory),
            )  # fmt: skip
            (source,) = directory.glob("genevector-1.0.0-cp38-*.whl")
            target = directory / "genevector-1.0.0-py3-none-any.whl"
            retag(source, target)
            pip("install", "-q", "numba")
            pip("install", "-q", "--no-deps", "--force-reinstall", str(target))
        except (subprocess.CalledProcessError, ValueError) as error:
            print(f"could not install the peer {PEER}: {error}", file=sys.stderr)
            return 1
    check = "import genevector.metrics as m; print('genevector 1.0.0: numba backend', m.HAS_NUMBA)"
    subprocess.run([sys.executable, "-c", check], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
