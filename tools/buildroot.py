"""Clean build roots for kernels of other Debian releases, and their images.

A Debian 12 host builds for Debian 12's kernels directly.  Debian 13's
kernels (trixie's own 6.12 and the newer lines of trixie-backports) and
Debian 11's 5.10 want their own release's compiler and headers, which the
host does not have; for those, ``build()`` prepares (once) a minimal root
of that release with mmdebstrap, installs the kernel's ``linux-headers``
and the ``linux-source`` of exactly the image's version in it, and runs
``tools/kbuild.py`` inside it (chroot in a private mount namespace, the
checkout bound at its own path, so the output lands in ``build/KVER``
as for any other kernel).  No containers engine, no host packages.

Layout::

    build/roots/RELEASE/          the root (reused while its stamp matches)
    build/roots/RELEASE.stamp     what it was made with
    /lib/modules/KVER/            the kernel's modules, unpacked for guests
    /lib/modules/KVER/vmlinuz     its image (not in /boot: no boot entry)

``fetch_image()`` unpacks the image package (and, for kernels that split
it, the binary and modules packages) without installing it: dpkg does not
know it, no initramfs is made, the boot loader never sees it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from tools.kbuild import ROOT, BuildError, kernel_line, say

MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
# what kbuild needs in a root: the compiler and Kbuild's tools, patch, xz
# for the source tarball, kmod for modinfo, a Python for tools/kbuild.py
ROOT_PACKAGES = ("gcc", "make", "libc6-dev", "bc", "bison", "flex", "libelf-dev",
                 "libssl-dev", "xz-utils", "patch", "kmod", "python3")
INSIDE = "LVS_IN_BUILDROOT"   # set in the root: kbuild builds there directly


@dataclasses.dataclass(frozen=True)
class Release:
    """A Debian release whose kernels we build in a root of its own."""

    name: str                    # the root's suite: trixie
    suites: tuple[str, ...]      # every suite of the root's apt sources
    security: str                # its security suite
    kver_re: str                 # the kernel releases it builds for

    def sources(self) -> str:
        lines = [f"deb {MIRROR} {suite} main" for suite in self.suites]
        return "\n".join(lines + [f"deb {SECURITY} {self.security} main"]) + "\n"


RELEASES = (
    # trixie's own 6.12 and trixie-backports' newest line (7.x)
    Release("trixie", ("trixie", "trixie-updates", "trixie-backports"), "trixie-security",
            r"\d+\.\d+\.\d+\+deb13-amd64"),
    Release("bullseye", ("bullseye", "bullseye-updates"), "bullseye-security",
            r"5\.10\.0-\d+-amd64"),
)


def release_for(kver: str) -> Release | None:
    """The release whose root builds ``kver``, or None (the host builds it)."""
    if os.environ.get(INSIDE):
        return None
    return next((r for r in RELEASES if re.fullmatch(r.kver_re, kver)), None)


def roots_dir() -> Path:
    return ROOT / "build" / "roots"


def _run(cmd: Sequence[str], what: str, **kw) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(cmd), text=True, capture_output=True, **kw)
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed:\n{tail}")
    return res


def _require_root(kver: str) -> None:
    if os.geteuid() != 0:
        raise BuildError(f"building for {kver} uses a build root of another Debian "
                         f"release (chroot, mount namespace): run as root")
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is missing (it makes the build roots): "
                         "apt-get install mmdebstrap, or run ./inv once")


def _stamp(release: Release) -> str:
    return f"{release.name} {' '.join(release.suites)} {' '.join(ROOT_PACKAGES)}\n"


def ensure_root(release: Release) -> Path:
    """The root of ``release``, made with mmdebstrap unless it is there."""
    root = roots_dir() / release.name
    stamp = roots_dir() / f"{release.name}.stamp"
    if root.is_dir() and stamp.exists() and stamp.read_text() == _stamp(release):
        return root
    roots_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=roots_dir()) as tmp:
        sources = Path(tmp) / "sources.list"
        sources.write_text(release.sources())
        fresh = Path(tmp) / "root"
        say(f"making a {release.name} build root with mmdebstrap (a few minutes, once)")
        _run(["mmdebstrap", "--variant=minbase", "--include=" + ",".join(ROOT_PACKAGES),
              # keep apt's lists: the kernels' packages are installed later
              "--skip=cleanup/apt/lists", release.name, str(fresh), str(sources)],
             f"mmdebstrap of {release.name}")
        if root.exists():
            shutil.rmtree(root)
        fresh.rename(root)
    stamp.write_text(_stamp(release))
    return root


def in_root(root: Path, argv: Sequence[str], what: str,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` chrooted in ``root``, the checkout bound at its own path.

    The mounts live in a private mount namespace and end with the command.
    """
    inside = root / str(ROOT).lstrip("/")
    inside.mkdir(parents=True, exist_ok=True)
    script = ('mount --make-rprivate / && mount --bind "$1" "$2" && '
              'mount -t proc proc "$3/proc" && shift 3 && exec chroot "$@"')
    base_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
                "DEBIAN_FRONTEND": "noninteractive", INSIDE: "1"}
    return _run(["unshare", "--mount", "sh", "-c", script, "sh", str(ROOT), str(inside),
                 str(root), str(root), *argv], what, env={**base_env, **(env or {})})


def apt_version(root: Path, package: str) -> str | None:
    """The candidate version of ``package`` in the root's archive, or None."""
    res = subprocess.run(["chroot", str(root), "apt-cache", "policy", package],
                         text=True, capture_output=True)
    m = re.search(r"Candidate:\s*(\S+)", res.stdout)
    return m.group(1) if m and m.group(1) != "(none)" else None


def ensure_kernel(root: Path, release: Release, kver: str) -> str:
    """Headers of ``kver`` and the source package of its exact version in ``root``.

    Returns the image's Debian version.
    """
    if apt_version(root, f"linux-image-{kver}") is None:
        in_root(root, ["apt-get", "update", "-q"], f"apt-get update in the {release.name} root")
    version = apt_version(root, f"linux-image-{kver}")
    if version is None:
        raise BuildError(f"Debian {release.name} has no kernel {kver} "
                         f"(linux-image-{kver} is not in {', '.join(release.suites)})")
    wanted = [f"linux-headers-{kver}={version}",
              f"linux-source-{kernel_line(kver)}={version}"]
    have = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f=${Version}",
                           f"linux-headers-{kver}", f"linux-source-{kernel_line(kver)}"],
                          text=True, capture_output=True).stdout
    if have != version * 2:
        say(f"installing linux-headers-{kver} and linux-source-{kernel_line(kver)} "
            f"{version} in the {release.name} root")
        in_root(root, ["apt-get", "install", "-y", "-q", "--no-install-recommends", *wanted],
                f"installing {kver}'s headers and sources in the {release.name} root")
    return version


def build(kver: str, out: Path, sets: Sequence[str], jobs: int = 0,
          verbose: bool = False) -> list[Path]:
    """Build ``sets`` for ``kver`` in its release's root, into ``out``."""
    release = release_for(kver)
    assert release is not None
    _require_root(kver)
    root = ensure_root(release)
    ensure_kernel(root, release, kver)
    argv = ["python3", "-B", "-m", "tools.kbuild", "--kver", kver, "--out", str(out)]
    argv += [f"--set={name}" for name in sets]
    argv += [f"--jobs={jobs}"] + (["--verbose"] if verbose else [])
    say(f"building for {kver} in the {release.name} root ({root})")
    proc = in_root(root, ["sh", "-c", f'cd "$0" && exec "$@"', str(ROOT), *argv],
                   f"the build for {kver} in the {release.name} root")
    sys.stdout.write(proc.stdout)
    return sorted((out / "modules").glob("*.ko"))


# ---------------------------------------------------------------- images for guests

def image_path(kver: str, modules_root: Path = Path("/lib/modules")) -> Path:
    """Where ``fetch_image`` puts the image of ``kver``."""
    return modules_root / kver / "vmlinuz"


def image_packages(root: Path, kver: str) -> list[str]:
    """The packages holding the image and modules of ``kver``: one package up
    to 6.x, the image plus ``linux-binary``/``linux-modules`` since 7.x."""
    names = [f"linux-image-{kver}"]
    names += [f"{kind}-{kver}" for kind in ("linux-binary", "linux-modules")
              if apt_version(root, f"{kind}-{kver}")]
    return names


def unpacked_kernel(unpacked: Path, kver: str,
                    packages: Sequence[str] = ()) -> tuple[Path, Path]:
    """The modules folder and the image of ``kver`` in unpacked packages.

    Up to 6.x the image is ``/boot/vmlinuz-KVER`` and the modules are in
    ``/lib/modules/KVER``; since 7.x (``linux-binary``, ``linux-modules``)
    both are under ``/usr/lib/modules/KVER``, the image as ``vmlinuz``.
    """
    for mods in (unpacked / "lib/modules" / kver, unpacked / "usr/lib/modules" / kver):
        if (mods / "kernel").is_dir():
            break
    for vmlinuz in (unpacked / "boot" / f"vmlinuz-{kver}", mods / "vmlinuz"):
        if vmlinuz.is_file():
            break
    if not (mods / "kernel").is_dir() or not vmlinuz.is_file():
        raise BuildError(f"{', '.join(packages) or unpacked} hold no image or "
                         f"modules of {kver}")
    return mods, vmlinuz


def fetch_image(kver: str, modules_root: Path = Path("/lib/modules")) -> Path:
    """Unpack the Debian image of ``kver`` for booting guests; returns the image.

    Modules go to ``/lib/modules/KVER`` (where the guest and depmod look),
    the image next to them; nothing is registered with dpkg or the boot
    loader, and ``/boot`` is not touched.
    """
    release = release_for(kver)
    if release is None:
        raise BuildError(f"{kver} is a kernel of this host's release: "
                         f"apt-get install linux-image-{kver}")
    image = image_path(kver, modules_root)
    if image.exists() and (modules_root / kver / "modules.dep").exists():
        return image
    _require_root(kver)
    root = ensure_root(release)
    ensure_kernel(root, release, kver)
    with tempfile.TemporaryDirectory(dir=root / "tmp") as tmp:
        inside = "/" + str(Path(tmp).relative_to(root))
        packages = image_packages(root, kver)
        say(f"downloading {', '.join(packages)} from {release.name}")
        in_root(root, ["sh", "-c", 'cd "$0" && exec apt-get download -q "$@"', inside,
                       *packages], f"downloading {kver}'s image")
        unpacked = Path(tmp) / "unpacked"
        for deb in sorted(Path(tmp).glob("*.deb")):
            _run(["dpkg-deb", "-x", str(deb), str(unpacked)], f"unpacking {deb.name}")
        mods, vmlinuz = unpacked_kernel(unpacked, kver, packages)
        dest = modules_root / kver
        dest.mkdir(parents=True, exist_ok=True)
        for entry in mods.iterdir():
            target = dest / entry.name
            if entry.is_dir() and not entry.is_symlink():
                shutil.copytree(entry, target, symlinks=True, dirs_exist_ok=True)
            elif not target.exists():
                shutil.copy2(entry, target, follow_symlinks=False)
        # depmod -b BASE reads BASE/lib/modules/KVER
        _run(["depmod", "-b", str(modules_root.parent.parent), kver], f"depmod {kver}")
        shutil.copy2(vmlinuz, image)
    say(f"{kver}: image {image}, modules in {modules_root / kver} (not a boot entry)")
    return image


# ---------------------------------------------------------------- the newest kernels

@dataclasses.dataclass(frozen=True)
class Line:
    """A kernel line of another Debian release: the image that
    ``linux-image-amd64`` of ``suite`` depends on (``suite`` None: the
    release's own candidate, its security updates included)."""

    title: str
    release: Release
    suite: str | None = None
    primary: bool = False        # the whole suite runs on it (else the core tier)


TRIXIE, BULLSEYE = RELEASES
LINES = (
    Line("Debian 13 (trixie) 6.12", TRIXIE, primary=True),
    Line("trixie-backports (the newest line)", TRIXIE, "trixie-backports"),
    Line("Debian 11 (bullseye) 5.10", BULLSEYE),
)


def madison_version(madison: str, suite: str) -> str | None:
    """The newest version that ``apt-cache madison`` lists for ``suite``."""
    for row in madison.splitlines():
        cells = [cell.strip() for cell in row.split("|")]
        if len(cells) == 3 and cells[2].split()[1:2] and \
                cells[2].split()[1].split("/")[0] == suite:
            return cells[1]
    return None


def image_dependency(show: str) -> str | None:
    """The kernel release that a ``linux-image-amd64`` stanza depends on."""
    m = re.search(r"^Depends:.*?\blinux-image-(\d[^\s,(]*)", show, re.M)
    return m.group(1) if m else None


_UPDATED: set[str] = set()


def newest_kernel(line: Line) -> str:
    """The release of the newest image of ``line`` in Debian's archive today
    (its root's package lists are refreshed once per process)."""
    _require_root(line.title)
    root = ensure_root(line.release)
    if line.release.name not in _UPDATED:
        in_root(root, ["apt-get", "update", "-q"],
                f"apt-get update in the {line.release.name} root")
        _UPDATED.add(line.release.name)
    if line.suite:
        madison = _run(["chroot", str(root), "apt-cache", "madison", "linux-image-amd64"],
                       "apt-cache madison linux-image-amd64").stdout
        version = madison_version(madison, line.suite)
    else:
        version = apt_version(root, "linux-image-amd64")
    if version is None:
        raise BuildError(f"{line.title}: no linux-image-amd64 in "
                         f"{line.suite or ', '.join(line.release.suites)}")
    show = _run(["chroot", str(root), "apt-cache", "show", f"linux-image-amd64={version}"],
                f"apt-cache show linux-image-amd64={version}").stdout
    kver = image_dependency(show)
    if kver is None or release_for(kver) is not line.release:
        raise BuildError(f"{line.title}: linux-image-amd64 {version} names no kernel "
                         f"that the {line.release.name} root builds ({kver})")
    return kver
