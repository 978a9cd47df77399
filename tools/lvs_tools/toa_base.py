"""What every part of the TOA installer shares: the module's names and the
files it writes, :class:`InstallerError`, and :func:`checkout`, the one
place that imports the checkout's build code (tools/install.py,
tools/kbuild.py); standard library only (a real server has no venv).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator, Sequence


MODULE = "toa"
DKMS_SET = "toa"
PERSIST_FILE = "etc/modules-load.d/lvs-toa.conf"
OPTIONS_FILE = "etc/modprobe.d/lvs-toa.conf"


NEEDS_CHECKOUT = ("this step needs a checkout of lvs-toolkit (DKMS builds toa.ko from its "
                  "kernel/toa with tools/kbuild.py): run it from one, as "
                  "PYTHONPATH=tools python3 -m lvs_tools.toa_installer ...")


class InstallerError(Exception):
    """A step failed; the message says what to do."""


@contextlib.contextmanager
def checkout() -> Iterator[tuple[ModuleType, ModuleType]]:
    """The checkout's build code, ``(tools.install, tools.kbuild)``.

    DKMS builds toa.ko from the checkout's sources with tools/kbuild.py, so
    the steps that build, or read Debian's package facts, run from a
    checkout; the installed package alone has the self-test.  Imported here,
    not at the top: the development harness is not installed.  Its
    BuildError comes out as InstallerError.
    """
    try:
        from tools import install, kbuild
    except ImportError as exc:
        raise InstallerError(NEEDS_CHECKOUT) from exc
    try:
        yield install, kbuild
    except kbuild.BuildError as exc:
        raise InstallerError(str(exc)) from exc


def dpkg_version(package: str) -> str | None:
    """The installed version of a Debian package, or None (tools/kbuild.py)."""
    with checkout() as (_, kbuild):
        return kbuild.dpkg_version(package)


def kernel_line(kver: str) -> str:
    """'6.12.95+deb12-amd64' -> '6.12' (tools/kbuild.py)."""
    with checkout() as (_, kbuild):
        return kbuild.kernel_line(kver)


def run_selftest(*args: str, cgroup: Path | None = None) -> tuple[bool, str]:
    """tools/lvs_tools/toa_selftest.py (with ``args``) in its own network
    namespace, inside ``cgroup`` when one is given; (passed, its output)."""
    here = str(Path(__file__).resolve().parent.parent)   # where lvs_tools is
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "lvs_tools.toa_selftest", *args]
    if cgroup is not None:      # the shell joins the cgroup, then becomes the test
        argv = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup / "cgroup.procs"),
                *argv]
    res = subprocess.run(argv, env=dict(os.environ, PYTHONPATH=path),
                         capture_output=True, text=True, timeout=300)
    return res.returncode == 0, (res.stdout + res.stderr).strip()


def say(msg: str) -> None:
    print(f"[toa] {msg}", flush=True)


def run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True)


def read_file(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
