"""Install our modules over the distribution's IPVS, and take them away again.

Modules go to ``/lib/modules/KVER/updates/lvs-toolkit/``; depmod searches
``updates`` before the stock ``kernel`` tree, so ``modprobe ip_vs`` (and
every scheduler the kernel requests) resolves to ours while the stock files
stay untouched.  The whole IPVS set is installed together: with MODVERSIONS
a changed ``struct ip_vs_*`` changes symbol CRCs, so a stock scheduler
cannot load against our core.

DKMS is the other way in (``kernel/*/dkms.conf``, see ``dkms_*`` below): it
rebuilds the modules whenever Debian installs a new kernel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from tools.kbuild import ROOT, BuildError, project_version

SUBDIR = "updates/lvs-toolkit"
DKMS_PACKAGES = {"ipvs": ("lvs-ipvs", "kernel/ip_vs/dkms.conf"),
                 "toa": ("lvs-toa", "kernel/toa/dkms.conf")}
# What a DKMS source tree needs: the staging script and everything it reads.
DKMS_FILES = ("Kbuild", "pyproject.toml", "LICENSE", "tools/__init__.py",
              "tools/kbuild.py", "kernel")


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise BuildError(f"{what} changes /lib/modules and needs root: run it with sudo")


def _run(cmd: Sequence[str]) -> str:
    res = subprocess.run(list(cmd), capture_output=True, text=True)
    if res.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed:\n{(res.stdout + res.stderr).strip()}")
    return res.stdout


def depmod(kver: str, base: Path | None = None) -> None:
    _run(["depmod", *(["-b", str(base)] if base else []), kver])


def module_path(kver: str, name: str, base: Path | None = None) -> str:
    """What modprobe would load for ``name`` (``modinfo -n``)."""
    return _run(["modinfo", *(["-b", str(base)] if base else []),
                 "-k", kver, "-n", name]).strip()


def install(kver: str, modules: Path, base: Path | None = None) -> list[Path]:
    """Copy the built modules into updates/lvs-toolkit and run depmod."""
    kos = sorted(modules.glob("*.ko"))
    if not kos:
        raise BuildError(f"nothing to install in {modules}: run ./inv build --kver {kver}")
    root = (base or Path("/")) / "lib/modules" / kver
    if not root.is_dir():
        raise BuildError(f"{root} does not exist: is kernel {kver} installed?")
    dest = root / SUBDIR
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for ko in kos:
        shutil.copy2(ko, dest / ko.name)
    depmod(kver, base)
    return [dest / ko.name for ko in kos]


def uninstall(kver: str, base: Path | None = None) -> bool:
    """Remove our modules of ``kver``; returns whether there were any."""
    dest = (base or Path("/")) / "lib/modules" / kver / SUBDIR
    if not dest.exists():
        return False
    shutil.rmtree(dest)
    depmod(kver, base)
    return True


# ---------------------------------------------------------------- DKMS

def dkms_source_tree(package: str, dest_root: Path = Path("/usr/src"),
                     root: Path = ROOT) -> Path:
    """Copy what DKMS needs to /usr/src/PACKAGE-VERSION, with its dkms.conf."""
    name, conf = DKMS_PACKAGES[package]
    version = project_version(root)
    dest = dest_root / f"{name}-{version}"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for rel in DKMS_FILES:
        src = root / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("*.o", "*.ko"))
        else:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    text = (root / conf).read_text().replace("@VERSION@", version)
    (dest / "dkms.conf").write_text(text)
    return dest


def dkms_install(package: str, kvers: Sequence[str]) -> None:
    """dkms add + build + install for each kernel (replacing an older add)."""
    require_root("dkms install")
    if shutil.which("dkms") is None:
        raise BuildError("dkms is missing: apt-get install dkms")
    dkms_remove(package)
    name, _ = DKMS_PACKAGES[package]
    version = project_version()
    dkms_source_tree(package)
    _run(["dkms", "add", "-m", name, "-v", version])
    for kver in kvers:
        print(f"[dkms] building {name}/{version} for {kver}", flush=True)
        _run(["dkms", "build", "-m", name, "-v", version, "-k", kver])
        _run(["dkms", "install", "-m", name, "-v", version, "-k", kver, "--force"])


def dkms_remove(package: str) -> bool:
    """Remove every version of the package from DKMS and /usr/src."""
    require_root("dkms remove")
    name, _ = DKMS_PACKAGES[package]
    status = subprocess.run(["dkms", "status", name], capture_output=True,
                            text=True).stdout
    versions = sorted({line.split(",")[0].split(":")[0].split("/")[1].strip()
                       for line in status.splitlines() if line.startswith(name + "/")})
    for version in versions:
        _run(["dkms", "remove", "-m", name, "-v", version, "--all"])
    for tree in Path("/usr/src").glob(f"{name}-*"):
        shutil.rmtree(tree)
    return bool(versions)
