"""Stage, patch and build the IPVS and TOA modules for one Debian kernel.

The upstream IPVS sources are never kept in this repository.  For a kernel
``KVER`` they are taken from the Debian source package that matches the
installed image (``/usr/src/linux-source-X.Y.tar.xz``), the patch series of
``kernel/ip_vs/series`` is applied to them, our own files are added, and the
result is built with Kbuild against ``/lib/modules/KVER/build``::

    build/KVER/upstream/   pristine IPVS files of that kernel (a cache)
    build/KVER/tree/       the staged module tree (kernel layout), M= of make
    build/KVER/modules/    every built .ko, flat (what install and the guest use)

A kernel may also be one built in this checkout from the same Debian source
package (``LOCAL_KERNELS``: the debug kernel of tools/debug_kernel.py).  Its
build tree stands in for ``/lib/modules/KVER/build``; it is named by its
alias (``debug``) or by its release.

This module uses the standard library only: DKMS runs it with the system
``python3`` on a balancer where the project's virtual environment is absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent

# Paths taken from the kernel source package, relative to its top folder.
UPSTREAM_MEMBERS = (
    "net/netfilter/ipvs",
    "include/net/ip_vs.h",
    "include/uapi/linux/ip_vs.h",
    "scripts/checkpatch.pl",
    "scripts/spelling.txt",
    "scripts/const_structs.checkpatch",
    # The kernel's own IPVS selftest moved between 6.1 and 6.12.
    "tools/testing/selftests/netfilter/ipvs.sh",
    "tools/testing/selftests/net/netfilter/ipvs.sh",
    "tools/testing/selftests/net/netfilter/lib.sh",
    "tools/testing/selftests/net/lib.sh",
)
# Members that must be present; the others are optional.
REQUIRED_MEMBERS = UPSTREAM_MEMBERS[:3]

# Module sets: name -> subfolder of the staged tree that Kbuild descends into.
MODULE_SETS = {"ipvs": "net/netfilter/ipvs", "toa": "toa"}


class BuildError(Exception):
    """A build step failed; the message says what to do about it."""


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(cmd: Sequence[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), text=True, capture_output=True, **kw)


def say(msg: str) -> None:
    """Progress output for long steps (stdout, flushed at once)."""
    print(f"[kbuild] {msg}", flush=True)


def project_version(root: Path = ROOT) -> str:
    """The project version, from pyproject.toml (also shipped to DKMS trees)."""
    text = (root / "pyproject.toml").read_text()
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if not match:
        raise BuildError(f"no version in {root / 'pyproject.toml'}")
    return match.group(1)


def kernel_line(kver: str) -> str:
    """'6.12.95+deb12-amd64' -> '6.12'; the X.Y of linux-source-X.Y."""
    match = re.match(r"(\d+)\.(\d+)", kver)
    if not match:
        raise BuildError(f"{kver!r} does not look like a kernel release")
    return f"{match.group(1)}.{match.group(2)}"


def dpkg_version(package: str) -> str | None:
    """Installed version of a Debian package, or None."""
    try:
        res = _run(["dpkg-query", "-W", "-f=${Status} ${Version}", package])
    except FileNotFoundError:
        return None
    if res.returncode != 0 or not res.stdout.startswith("install ok installed"):
        return None
    return res.stdout.split()[-1]


@dataclasses.dataclass(frozen=True)
class Target:
    """One kernel to build for, with where its headers and sources are."""

    kver: str
    headers: Path          # /lib/modules/KVER/build
    tarball: Path          # /usr/src/linux-source-X.Y.tar.xz
    image_version: str | None   # Debian version of the kernel image
    source_version: str | None  # Debian version of linux-source-X.Y
    make_args: tuple[str, ...] = ()   # extra variables for Kbuild

    @property
    def line(self) -> str:
        return kernel_line(self.kver)

    @property
    def source_package(self) -> str:
        return f"linux-source-{self.line}"

    def source_install_hint(self) -> str:
        return apt_hint(self.source_package, self.image_version)


def apt_hint(package: str, version: str | None = None) -> str:
    """The apt command that installs ``package``, at exactly ``version`` if given.

    Never with ``-t bookworm-backports``: an exact version finds its suite
    alone, and ``-t`` would move every installed package it touches (the
    6.1 metapackages among them) to the backports line.
    """
    return f"apt-get install {package}" + (f"={version}" if version else "")


def discover(kver: str, *, need_source: bool = True,
             modules_root: Path = Path("/lib/modules"),
             src_root: Path = Path("/usr/src"),
             version_of: Callable[[str], str | None] = dpkg_version,
             root: Path = ROOT) -> Target:
    """Find headers and (``need_source``) the matching source package for ``kver``.

    Raises BuildError naming the Debian package to install when something
    is missing, or when the source package's version is not the image's
    (the IPVS sources must be exactly those the kernel was built from).
    TOA alone needs only the headers.  A local kernel (``LOCAL_KERNELS``)
    is found by its alias or release.
    """
    local = local_kernel(kver, root)
    if local is not None:
        return discover_local(local, src_root=src_root, version_of=version_of)
    line = kernel_line(kver)
    headers = modules_root / kver / "build"
    image_version = (version_of(f"linux-image-{kver}")
                     or version_of(f"linux-image-{kver}-unsigned")
                     or version_of(f"linux-headers-{kver}"))
    if not (headers / "Makefile").exists():
        raise BuildError(
            f"kernel headers for {kver} are missing ({headers} has no Makefile): "
            + apt_hint(f"linux-headers-{kver}", image_version))
    target = Target(kver, headers, src_root / f"linux-source-{line}.tar.xz",
                    image_version, version_of(f"linux-source-{line}"))
    if not need_source:
        return target
    if not target.tarball.exists():
        raise BuildError(
            f"the IPVS sources of {kver} come from Debian's {target.source_package}, "
            f"which is not installed ({target.tarball} is missing): "
            f"{target.source_install_hint()}")
    if (target.image_version and target.source_version
            and target.image_version != target.source_version):
        raise BuildError(
            f"{target.source_package} is {target.source_version} but kernel {kver} "
            f"is {target.image_version}; the sources must match the kernel: "
            f"{target.source_install_hint()}")
    return target


# ---------------------------------------------------------------- local kernels

@dataclasses.dataclass(frozen=True)
class LocalKernel:
    """A kernel built in this checkout from Debian's linux-source-X.Y.

    ``base/src`` holds the extracted sources, ``base/obj`` the build tree
    (what ``/lib/modules/KVER/build`` is for a Debian kernel),
    ``base/boot/vmlinuz-KVER`` the image and ``base/modroot/lib/modules/KVER``
    its ``modules_install`` (the stock IPVS modules and the indexes).
    """

    name: str     # the alias: --kver NAME
    base: Path
    line: str     # the X.Y of the source package it is built from

    @property
    def obj(self) -> Path:
        return self.base / "obj"

    @property
    def modules_root(self) -> Path:
        return self.base / "modroot/lib/modules"

    @property
    def source_stamp(self) -> Path:
        """Which tarball the sources came from (written at extraction)."""
        return self.base / "src/.lvs-stamp"

    def release(self) -> str | None:
        """The built kernel's release (``uname -r`` in its guest), or None."""
        path = self.obj / "include/config/kernel.release"
        return path.read_text().strip() if path.exists() else None

    def image(self) -> Path | None:
        release = self.release()
        return self.base / "boot" / f"vmlinuz-{release}" if release else None

    def built(self) -> bool:
        image = self.image()
        return bool(image and image.exists() and (self.obj / "Module.symvers").exists())


def local_kernels(root: Path = ROOT) -> dict[str, LocalKernel]:
    """The kernels this checkout can build itself, by alias."""
    return {"debug": LocalKernel("debug", root / "build/debug-kernel", "6.12")}


def local_kernel(kver: str, root: Path = ROOT) -> LocalKernel | None:
    """The local kernel named ``kver`` (its alias or its built release)."""
    for local in local_kernels(root).values():
        if kver == local.name or (kver.endswith("-lvs-" + local.name)
                                  and kver == local.release()):
            return local
    return None


def resolve_kver(kver: str, root: Path = ROOT) -> str:
    """``kver`` with a local kernel's alias replaced by its release."""
    local = local_kernels(root).get(kver)
    if local is None:
        return kver
    release = local.release()
    if release is None or not local.built():
        raise BuildError(f"the {kver} kernel is not built yet: ./inv {kver}-kernel")
    return release


def discover_local(local: LocalKernel, *, src_root: Path = Path("/usr/src"),
                   version_of: Callable[[str], str | None] = dpkg_version) -> Target:
    """The Target of a local kernel: its build tree as headers, and the
    source package it was built from, which must still be the installed one
    (the IPVS sources are staged from that package again)."""
    release = local.release()
    if release is None or not local.built():
        raise BuildError(f"the {local.name} kernel is not built yet: "
                         f"./inv {local.name}-kernel")
    version = version_of(f"linux-source-{local.line}")
    target = Target(release, local.obj, src_root / f"linux-source-{local.line}.tar.xz",
                    version, version,
                    # no DWARF in the kernel (a short build); our modules get
                    # it, so that offsets in a sanitizer's report map to lines
                    make_args=("KCFLAGS=-g",))
    if not target.tarball.exists() or not local.source_stamp.exists() \
            or local.source_stamp.read_text() != _stamp_text(target):
        raise BuildError(f"the {local.name} kernel was built from another "
                         f"{target.source_package} than {target.tarball}: "
                         f"./inv {local.name}-kernel rebuilds it")
    return target


def installed_kernels(modules_root: Path = Path("/lib/modules")) -> list[str]:
    """Kernels with headers installed, of the lines we support (6.1, 6.12)."""
    found = []
    for entry in sorted(modules_root.iterdir()) if modules_root.is_dir() else []:
        if (entry / "build" / "Makefile").exists() and \
                re.match(r"6\.(1|12)\.", entry.name):
            found.append(entry.name)
    return found


# ---------------------------------------------------------------- staging

def _stamp_text(target: Target) -> str:
    stat = target.tarball.stat()
    return f"{target.tarball} {target.source_version} {stat.st_size} {int(stat.st_mtime)}\n"


def extract_upstream(target: Target, dest: Path) -> Path:
    """Extract the IPVS-related members of the source tarball into ``dest``.

    Cached: a stamp file records which tarball the folder came from.
    Returns the folder holding the kernel-layout files.
    """
    stamp = dest / ".stamp"
    if stamp.exists() and stamp.read_text() == _stamp_text(target):
        return dest
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    top = f"linux-source-{target.line}"
    say(f"extracting the IPVS sources from {target.tarball} (about 10 s)")
    started = time.monotonic()
    # --wildcards lets one pass pick both the required and the optional
    # members; tar reports the missing optional ones, which we check below.
    patterns = [f"{top}/{m}" for m in UPSTREAM_MEMBERS]
    res = _run(["tar", "-xJf", str(target.tarball), "-C", str(dest),
                "--strip-components=1", "--wildcards", "--no-wildcards-match-slash",
                *patterns, *[p + "/*" for p in patterns]])
    missing = [m for m in REQUIRED_MEMBERS if not (dest / m).exists()]
    if missing:
        raise BuildError(
            f"{target.tarball} lacks {', '.join(missing)} (tar said: "
            f"{res.stderr.strip()[:300]}); reinstall {target.source_package}")
    stamp.write_text(_stamp_text(target))
    say(f"extracted in {time.monotonic() - started:.1f} s")
    return dest


def read_series(series: Path) -> list[str]:
    """Patch names from a quilt-style series file (comments and blanks ignored)."""
    names = []
    for raw in series.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            if "/" in line or line.startswith("."):
                raise BuildError(f"{series}: bad patch name {line!r}")
            names.append(line)
    return names


def _line_key(line: str) -> tuple[int, ...]:
    return tuple(int(part) for part in line.split("."))


def _line_dirs(patch_root: Path) -> list[str]:
    """The kernel lines with hunks of their own (``patches/X.Y/``), oldest first."""
    if not patch_root.is_dir():
        return []
    lines = [d.name for d in patch_root.iterdir()
             if d.is_dir() and re.fullmatch(r"\d+\.\d+", d.name)]
    return sorted(lines, key=_line_key)


def resolve_patches(patch_dir: Path, line: str) -> list[tuple[Path, ...]]:
    """The patch files to apply for kernel ``line``, in series order.

    Each series name stands for a common part and forms: ``patches/NAME``
    holds the hunks every kernel line takes, and ``patches/X.Y/NAME`` the
    hunks whose upstream context took another form in kernel X.Y.  Each
    entry of the result is one step: the common part alone, or the forms a
    line may take, best first: the newest X.Y not after the line, then the
    older ones (a stable update can bring an older line's form to a newer
    line, as the ICMP rework of 6.1.y and 6.12.y did); ``apply_patches``
    takes the first that applies exactly.  A line older than every X.Y
    that has a form of NAME is refused, since its form was never written.
    """
    series = patch_dir / "series"
    if not series.exists():
        return []
    patch_root = patch_dir / "patches"
    dirs = _line_dirs(patch_root)
    steps: list[tuple[Path, ...]] = []
    for name in read_series(series):
        common = patch_root / name
        forms = [d for d in dirs if (patch_root / d / name).exists()]
        if not common.exists() and not forms:
            raise BuildError(f"{series} names {name}, which is not in {patch_root}")
        if common.exists():
            steps.append((common,))
        if forms:
            usable = [d for d in forms if _line_key(d) <= _line_key(line)]
            if not usable:
                raise BuildError(
                    f"{name} has hunks of their own for kernel lines "
                    f"{', '.join(forms)} but none for {line}: write its form "
                    f"as {patch_root / line / name}")
            steps.append(tuple(patch_root / d / name for d in reversed(usable)))
    return steps


def _patch(tree: Path, patch: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _run(["patch", "-p1", "--batch", "--forward", "--fuzz=0",
                 "--no-backup-if-mismatch", *extra, "-d", str(tree), "-i", str(patch)])


def has_hunks(patch: Path) -> bool:
    """Whether a patch file changes anything (a form may be a description only)."""
    return any(line.startswith("@@ ") for line in patch.read_text().splitlines())


def apply_patches(tree: Path, steps: Iterable[tuple[Path, ...]], what: str) -> None:
    """Apply each step with -p1, exactly (no fuzz); stop at the first failure.

    A step of several forms applies the first whose every hunk fits (tried
    with --dry-run first, so a form that fits in part leaves nothing behind).
    A form without hunks (a description only) says that its lines need no
    change there; it is taken only as the line's newest form, never in
    place of a newer form that does not fit.
    """
    for forms in steps:
        forms = forms[:1] + tuple(f for f in forms[1:] if has_hunks(f))
        patch = forms[0]
        if len(forms) > 1:
            patch = next((f for f in forms
                          if _patch(tree, f, "--dry-run").returncode == 0), patch)
        if not has_hunks(patch):
            continue
        res = _patch(tree, patch)
        if res.returncode != 0:
            tried = " or ".join(f"{f.parent.name}/{f.name}" for f in forms)
            raise BuildError(
                f"patch {patch.name} does not apply to {what}"
                + (f" in any of its forms ({tried}; the output is the first's)"
                   if len(forms) > 1 else "")
                + f":\n{(res.stdout + res.stderr).strip()}\n"
                f"refresh it; hunks whose form differs on this kernel line go "
                f"to patches/<X.Y>/{patch.name} (see kernel/ip_vs/series)")


def _copy_files(src: Path, dest: Path, suffixes: tuple[str, ...]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.iterdir()):
        if path.is_file() and (path.suffix in suffixes or path.name == "Kbuild"):
            shutil.copy2(path, dest / path.name)


# Probes of the target tree: macro -> (header relative to include/, or
# Module.symvers for what the kernel exports to modules, regex).
# Each becomes "#define MACRO 1" in lvs/compat_autoconf.h when it matches,
# so compat.h can test features instead of version numbers.
COMPAT_PROBES: dict[str, tuple[str, str]] = {
    # 6.12 moved asm/unaligned.h to linux/unaligned.h
    "LVS_HAVE_LINUX_UNALIGNED_H": ("linux/unaligned.h", r"\bget_unaligned\b"),
    # 6.5 moved the GSO helpers (skb_gso_validate_network_len) to net/gso.h
    "LVS_HAVE_NET_GSO_H": ("net/gso.h", r"\bskb_gso_validate_network_len\b"),
    # 6.6 added the sized sysctl registration (and made the plain one a
    # macro over ARRAY_SIZE, unusable with a per-namespace copy)
    "LVS_HAVE_REGISTER_NET_SYSCTL_SZ": ("net/net_namespace.h",
                                        r"\bregister_net_sysctl_sz\s*\("),
    # 6.2 added get_random_u32_below() (prandom_u32_max() before it)
    "LVS_HAVE_GET_RANDOM_U32_BELOW": ("linux/random.h", r"\bget_random_u32_below\s*\("),
    # 5.18 added skb_clear_tstamp() (with the mono delivery time bit)
    "LVS_HAVE_SKB_CLEAR_TSTAMP": ("linux/skbuff.h", r"\bskb_clear_tstamp\s*\("),
    # 5.11 passed ftrace callbacks a struct ftrace_regs (pt_regs before)
    "LVS_HAVE_FTRACE_REGS": ("linux/ftrace.h", r"\bftrace_get_regs\s*\("),
    # 5.11 added get_kretprobe() (ri->rp before)
    "LVS_HAVE_GET_KRETPROBE": ("linux/kprobes.h", r"\bget_kretprobe\s*\("),
    # ftrace_free_filter() is exported to modules since 6.2 (declared before)
    "LVS_HAVE_FTRACE_FREE_FILTER": ("Module.symvers", r"\tftrace_free_filter\t"),
    # Debian's 6.1 passes the transport offset to state transitions
    "LVS_HAVE_STATE_TRANSITION_IPH_LEN": (
        "net/ip_vs.h", r"\(\*state_transition\)\([^;]*unsigned int iph_len\)"),
    # newer kernels (7.3) route IPv4 by DSCP: struct flowi4 lost flowi4_tos
    "LVS_HAVE_FLOWI4_DSCP": ("net/flow.h", r"#define\s+flowi4_dscp\b"),
    # newer kernels (7.x) allocate typed objects with kzalloc_obj()
    "LVS_HAVE_KZALLOC_OBJ": ("linux/slab.h", r"#define\s+kzalloc_obj\("),
    # 7.3 replaced the global __ip_vs_mutex by a mutex per namespace
    "LVS_HAVE_IPVS_SERVICE_MUTEX": ("net/ip_vs.h",
                                    r"struct mutex\s+service_mutex;"),
}


def _header_text(target: Target, rel: str) -> str:
    """A header of the target (relative to include/), or its Module.symvers."""
    for base in (target.headers, target.headers / "source",
                 target.headers.parent / "source"):
        path = base / rel if rel == "Module.symvers" else base / "include" / rel
        if path.exists():
            return path.read_text(errors="replace")
    return ""


def write_compat_autoconf(target: Target, dest: Path) -> None:
    lines = ["/* SPDX-License-Identifier: GPL-2.0 */",
             f"/* Generated by tools/kbuild.py for {target.kver}; do not edit. */",
             "#ifndef LVS_COMPAT_AUTOCONF_H", "#define LVS_COMPAT_AUTOCONF_H"]
    for macro, (rel, regex) in COMPAT_PROBES.items():
        if re.search(regex, _header_text(target, rel)):
            lines.append(f"#define {macro} 1")
    lines.append("#endif")
    dest.write_text("\n".join(lines) + "\n")


def stage(target: Target, out: Path, sets: Sequence[str] = tuple(MODULE_SETS),
          root: Path = ROOT) -> Path:
    """Build ``out/tree``: upstream IPVS, patched, plus our sources and Kbuild."""
    tree = out / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    if "ipvs" in sets:
        stage_ipvs(target, out / "upstream", tree, root)
    if "toa" in sets:
        _copy_files(root / "kernel/toa", tree / "toa", (".c", ".h"))
    _copy_files(root / "kernel/compat", tree / "include/lvs", (".h",))
    write_compat_autoconf(target, tree / "include/lvs/compat_autoconf.h")
    (tree / "include/lvs/version.h").write_text(
        "/* SPDX-License-Identifier: GPL-2.0 */\n"
        "/* Generated by tools/kbuild.py; do not edit. */\n"
        f'#define LVS_TOOLKIT_VERSION "{project_version(root)}"\n')
    shutil.copy2(root / "Kbuild", tree / "Kbuild")
    return tree


def stage_ipvs(target: Target, cache: Path, tree: Path, root: Path = ROOT) -> None:
    """Upstream IPVS of ``target`` into ``tree``, patched, with our files added."""
    upstream = extract_upstream(target, cache)
    ipvs = tree / "net/netfilter/ipvs"
    shutil.copytree(upstream / "net/netfilter/ipvs", ipvs)
    for rel in ("include/net/ip_vs.h", "include/uapi/linux/ip_vs.h"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(upstream / rel, tree / rel)
    patches = resolve_patches(root / "kernel/ip_vs", target.line)
    if patches:
        say(f"applying {len(patches)} patch(es) to the IPVS sources of {target.kver}")
    apply_patches(tree, patches,
                  f"the IPVS sources of {target.kver} "
                  f"({target.source_package} {target.source_version or '?'})")
    _copy_files(root / "kernel/ip_vs", ipvs, (".c", ".h"))
    # Our own headers for <net/...>, next to the patched upstream ones.
    if (root / "kernel/ip_vs/include").is_dir():
        shutil.copytree(root / "kernel/ip_vs/include", tree / "include",
                        dirs_exist_ok=True)


# ---------------------------------------------------------------- building

def make(target: Target, tree: Path, sets: Sequence[str], jobs: int = 0,
         verbose: bool = False) -> None:
    """Run Kbuild for the chosen module sets, streaming its progress lines."""
    jobs = jobs or os.cpu_count() or 1
    cmd = ["make", "-C", str(target.headers), f"M={tree}", f"-j{jobs}",
           "LVS_SETS=" + " ".join(sets), *target.make_args]
    if verbose:
        cmd.append("V=1")
    cmd.append("modules")
    say(f"building {', '.join(sets)} for {target.kver} ({' '.join(cmd)})")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-60:]
        if verbose or " CC " in line or " LD " in line or "warning:" in line \
                or "error:" in line:
            print("    " + line.rstrip(), flush=True)
    if proc.wait() != 0:
        raise BuildError(f"make failed for {target.kver}:\n" + "\n".join(tail))
    say(f"built in {time.monotonic() - started:.1f} s")


def collect(tree: Path, dest: Path, sets: Sequence[str]) -> list[Path]:
    """Copy built modules of the chosen sets into one flat folder."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    found = []
    for name in sets:
        for ko in sorted((tree / MODULE_SETS[name]).glob("*.ko")):
            shutil.copy2(ko, dest / ko.name)
            found.append(dest / ko.name)
    if not found:
        raise BuildError(f"no modules were built in {tree}")
    return found


def _buildroot():
    """tools/buildroot.py, which builds on this module; None in a DKMS tree
    (``python3 tools/kbuild.py`` in /usr/src/PACKAGE-VERSION), which has no
    build roots: DKMS builds for the host's own kernels, on the host."""
    try:
        from tools import buildroot
    except ImportError:
        return None
    return buildroot


def build(kver: str, out: Path, sets: Sequence[str] = tuple(MODULE_SETS),
          jobs: int = 0, verbose: bool = False, root: Path = ROOT) -> list[Path]:
    """The whole pipeline for one kernel; returns the built module paths."""
    unknown = set(sets) - set(MODULE_SETS)
    if unknown:
        raise BuildError(f"unknown module set(s) {sorted(unknown)}; "
                         f"known: {sorted(MODULE_SETS)}")
    buildroot = _buildroot()
    if buildroot is not None and buildroot.release_for(kver) is not None:
        return buildroot.build(kver, out, sets, jobs, verbose)
    target = discover(kver, need_source="ipvs" in sets, root=root)
    tree = stage(target, out, sets, root)
    make(target, tree, sets, jobs, verbose)
    modules = collect(tree, out / "modules", sets)
    say(f"{len(modules)} module(s) in {out / 'modules'}")
    return modules


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kbuild", description="Stage, patch and build the IPVS/TOA modules.")
    parser.add_argument("--kver", default=os.uname().release,
                        help="kernel release to build for (default: running kernel)")
    parser.add_argument("--out", type=Path, help="output folder (default: build/KVER)")
    parser.add_argument("--set", dest="sets", action="append", choices=sorted(MODULE_SETS),
                        help="module set to build (repeatable; default: all)")
    parser.add_argument("-j", "--jobs", type=int, default=0)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        kver = resolve_kver(args.kver)
        out = args.out or ROOT / "build" / kver
        build(kver, out.resolve(), args.sets or tuple(MODULE_SETS),
              args.jobs, args.verbose)
    except BuildError as exc:
        print(f"kbuild: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
