"""Build the debug kernel: the 6.12 Debian sources with the sanitizers on.

The kernel the sanitizer tier boots is built here, from the same
``linux-source-6.12`` package our modules are staged from (the one matching
the installed 6.12 image), with the configuration of
``kernel/debug/debug.config`` applied on top of ``allnoconfig``: KASAN,
kmemleak, lockdep and the rest, plus exactly what a virtme-ng guest and
tests/kernel need.  Layout (``kbuild.LocalKernel``)::

    build/debug-kernel/src/       the extracted sources (cached per tarball)
    build/debug-kernel/obj/       the build tree (O=), headers of our modules
    build/debug-kernel/boot/      vmlinuz-RELEASE
    build/debug-kernel/modroot/   modules_install: lib/modules/RELEASE
    build/debug-kernel/build.log  the last build's output

A build is skipped when neither the tarball nor the fragment changed since
the last one; a changed fragment rebuilds incrementally, a changed tarball
from scratch.  make runs with ``nice -n 19``: the machine is shared.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from tools import kbuild
from tools.kbuild import ROOT, BuildError, LocalKernel, Target, say

FRAGMENT = ROOT / "kernel/debug/debug.config"
#: Bumped when the way the kernel is built changes (not its configuration).
RECIPE = "1"
_LINE = re.compile(r"^(CONFIG_\w+)=(.*)$|^# (CONFIG_\w+) is not set$")


def parse_config(text: str) -> dict[str, str]:
    """``CONFIG_X`` -> value ("n" for "is not set") of a .config or fragment."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        match = _LINE.match(raw.strip())
        if match:
            if match.group(1):
                values[match.group(1)] = match.group(2)
            else:
                values[match.group(3)] = "n"
    return values


def config_mismatches(fragment: str, config: str) -> list[str]:
    """Each fragment line the final .config does not hold (a dependency
    missing, a name that does not exist in this kernel): silent in Kconfig,
    an error here."""
    final = parse_config(config)
    return [f"{name}={want} (the .config has {final.get(name, 'n')})"
            for name, want in parse_config(fragment).items()
            if final.get(name, "n") != want]


def source_target(modules_root: Path = Path("/lib/modules")) -> Target:
    """The installed Debian kernel of the debug kernel's line, whose source
    package (checked against its image's version) the debug kernel is built
    from."""
    line = kbuild.local_kernels()["debug"].line
    kvers = [k for k in kbuild.installed_kernels(modules_root) if kbuild.kernel_line(k) == line]
    if not kvers:
        raise BuildError(f"no {line} kernel is installed; the debug kernel is built from "
                         f"its sources: run ./inv (it installs the {line} line)")
    return kbuild.discover(kvers[-1])


def recipe_stamp(target: Target, fragment: Path) -> str:
    """What the built kernel depends on: the tarball, the fragment, the recipe."""
    digest = hashlib.sha256(fragment.read_bytes()).hexdigest()
    return kbuild._stamp_text(target) + f"fragment {digest}\nrecipe {RECIPE}\n"


def extract_sources(target: Target, src: Path) -> bool:
    """The whole tarball into ``src`` unless it came from this tarball
    already; returns whether it was extracted (then the build starts over)."""
    stamp = src / ".lvs-stamp"
    if stamp.exists() and stamp.read_text() == kbuild._stamp_text(target):
        return False
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    say(f"extracting {target.tarball} (about 20 s)")
    res = subprocess.run(["tar", "-xJf", str(target.tarball), "-C", str(src),
                          "--strip-components=1"], capture_output=True, text=True)
    if res.returncode != 0:
        raise BuildError(f"tar failed on {target.tarball}: {res.stderr.strip()[:300]}")
    stamp.write_text(kbuild._stamp_text(target))
    return True


def _make(local: LocalKernel, *args: str, log: Path | None = None) -> None:
    cmd = ["nice", "-n", "19", "make", "-C", str(local.base / "src"), f"O={local.obj}", *args]
    if log is None:
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise BuildError(f"{' '.join(cmd)} failed:\n{(res.stdout + res.stderr)[-3000:]}")
        return
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        raise BuildError(f"{' '.join(cmd)} failed (log: {log}):\n" + "\n".join(tail))


def configure(local: LocalKernel, fragment: Path) -> None:
    """allnoconfig with the fragment on top; every fragment line must hold."""
    local.obj.mkdir(parents=True, exist_ok=True)
    _make(local, f"KCONFIG_ALLCONFIG={fragment}", "allnoconfig")
    missing = config_mismatches(fragment.read_text(), (local.obj / ".config").read_text())
    if missing:
        raise BuildError(f"{fragment} asks for what the kernel's Kconfig did not give "
                         "(a dependency is off, or the option does not exist):\n  "
                         + "\n  ".join(missing))


@dataclasses.dataclass
class Result:
    release: str
    image: Path
    seconds: float    # 0 when the cached build was up to date


def install_outputs(local: LocalKernel, release: str) -> Path:
    """The image to ``boot/``, the modules to a fresh ``modroot/``."""
    modroot = local.base / "modroot"
    if modroot.exists():
        shutil.rmtree(modroot)
    _make(local, f"INSTALL_MOD_PATH={modroot}", "modules_install")
    live = local.modules_root / release
    # the build tree where /lib/modules/K/build is on a Debian system
    for link in ("build", "source"):
        path = live / link
        if path.is_symlink() or path.exists():
            path.unlink()
    (live / "build").symlink_to(local.obj)
    (live / "source").symlink_to(local.base / "src")
    boot = local.base / "boot"
    if boot.exists():
        shutil.rmtree(boot)
    boot.mkdir()
    image = boot / f"vmlinuz-{release}"
    shutil.copy2(local.obj / "arch/x86/boot/bzImage", image)
    return image


def build(jobs: int = 0, fragment: Path = FRAGMENT, force: bool = False) -> Result:
    """Build (or find up to date) the debug kernel and its stock modules."""
    local = kbuild.local_kernels()["debug"]
    target = source_target()
    stamp = local.base / ".stamp"
    want = recipe_stamp(target, fragment)
    if not force and local.built() and stamp.exists() and stamp.read_text() == want:
        release = local.release() or ""
        say(f"debug kernel {release} is up to date ({local.image()})")
        return Result(release, local.image() or Path(), 0.0)
    started = time.monotonic()
    stamp.unlink(missing_ok=True)
    if extract_sources(target, local.base / "src") and local.obj.exists():
        shutil.rmtree(local.obj)
    log = local.base / "build.log"
    log.write_text("")
    say(f"configuring from {fragment.relative_to(ROOT)} (allnoconfig + fragment)")
    configure(local, fragment)
    jobs = jobs or os.cpu_count() or 1
    say(f"building the debug kernel with nice -n 19 make -j{jobs} (log: {log}); "
        "from scratch about an hour on 2 shared cores")
    _make(local, f"-j{jobs}", "all", log=log)
    release = local.release() or ""
    image = install_outputs(local, release)
    stamp.write_text(want)
    seconds = time.monotonic() - started
    say(f"debug kernel {release} built in {seconds / 60:.1f} min: {image}")
    return Result(release, image, seconds)
