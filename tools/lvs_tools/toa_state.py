"""What is on the machine of toa.ko: the running kernel, whether it is
loaded, its file and signer, its DKMS registration, whether it loads at
boot, and its counters (/proc/net/toa_stats).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lvs_tools.toa_base import (DKMS_SET, MODULE, PERSIST_FILE, checkout, read_file,
                                run)


def running_kernel() -> str:
    return os.uname().release


def loaded(root: Path = Path("/")) -> bool:
    return (root / "sys/module" / MODULE / "initstate").exists()


def module_file(kver: str) -> str | None:
    """The toa.ko modprobe would load for ``kver``, or None."""
    res = run(["modinfo", "-k", kver, "-n", MODULE])
    return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else None


def module_signer(path: str) -> str | None:
    res = run(["modinfo", "-F", "signer", path])
    return res.stdout.strip() or None


def dkms_status(kver: str) -> str | None:
    if shutil.which("dkms") is None:
        return None
    with checkout() as (inst, _):
        name = inst.DKMS_PACKAGES[DKMS_SET][0]
    res = run(["dkms", "status", "-k", kver, name])
    return res.stdout.strip() or None


def persisted(root: Path = Path("/")) -> bool:
    path = root / PERSIST_FILE
    return path.exists() and MODULE in path.read_text().split()


def persist(root: Path = Path("/")) -> Path:
    """Load toa at every boot (systemd-modules-load reads modules-load.d)."""
    path = root / PERSIST_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# TOA for real servers behind a FULLNAT balancer (lvs-toolkit);\n"
                    "# written by lvs_tools.toa_installer, removed by its uninstall.\n"
                    f"{MODULE}\n")
    return path


def unpersist(root: Path = Path("/")) -> bool:
    path = root / PERSIST_FILE
    if not path.exists():
        return False
    path.unlink()
    return True


def parse_stats(text: str) -> dict[str, int]:
    """Counter name -> total, from /proc/net/toa_stats."""
    stats = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[-1].isdigit():
            stats[fields[0]] = int(fields[-1])
    return stats


def read_stats(root: Path = Path("/")) -> dict[str, int] | None:
    text = read_file(root / "proc/net/toa_stats")
    return parse_stats(text) if text is not None else None
