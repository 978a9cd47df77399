"""Package our keepalived as a Debian package, install it, bring Debian's back.

The package is named ``keepalived`` like Debian's and replaces it in place
(same files, the unit and ``/etc/default/keepalived`` of its own); its
version is Debian's source version + ``+lvs<N>`` (tools/keepalived_build.
package_version()), which sorts above Debian's builds of that source, so
``dpkg -l``/``apt policy`` show which one is installed and an operator can
pin or hold it (docs/keepalived.md).  Packaging files are ours
(``keepalived/debian/``); nothing of Debian's packaging is copied.

    package()    make install into build/keepalived/pkgroot, add ours, dpkg-deb
    install()    apt-get install ./keepalived_...deb (dependencies from Debian)
    uninstall()  apt-get install --allow-downgrades keepalived=<Debian's version>
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Sequence

from tools.kbuild import BuildError
from tools.keepalived_build import (KA_DIR, OUT, SOURCE_PACKAGE, SOURCE_VERSION, TREE,
                                    _run, build, debian_candidate, package_version, say)

DEBIAN_FILES = KA_DIR / "debian"
APT_OPTS = ("-y", "-q", "-o", "DPkg::Lock::Timeout=600",
            "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise BuildError(f"{what} changes the installed packages and needs root: run it with sudo")


def _check(res: subprocess.CompletedProcess[str], what: str) -> str:
    if res.returncode:
        raise BuildError(f"{what} failed ({res.returncode}):\n{(res.stdout + res.stderr).strip()}")
    return res.stdout


# ---------------------------------------------------------------- package

def _strip(root: Path) -> None:
    """Strip executables as Debian's builds do (debug symbols not shipped)."""
    for path in (root / "usr" / "sbin", root / "usr" / "bin"):
        for exe in path.glob("*") if path.exists() else ():
            if exe.is_file() and not exe.is_symlink():
                _check(_run(["strip", "--remove-section=.comment", "--remove-section=.note",
                             "--strip-unneeded", str(exe)]), f"strip {exe}")


def _gzip_docs(root: Path) -> None:
    """Man pages and long docs compressed, -n (no name, no time) as dh_compress."""
    for page in list((root / "usr" / "share" / "man").rglob("*")):
        if page.is_file() and not page.name.endswith(".gz"):
            with page.open("rb") as src, gzip.GzipFile(str(page) + ".gz", "wb", 9,
                                                       mtime=0) as dst:
                shutil.copyfileobj(src, dst)
            page.unlink()


def _changelog(version: str, source_note: str) -> bytes:
    when = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    text = (f"{SOURCE_PACKAGE} ({version}) bookworm; urgency=medium\n\n"
            f"  * lvs-toolkit build of Debian's {SOURCE_PACKAGE} source {SOURCE_VERSION}\n"
            f"    ({source_note}) with the FULLNAT/SYNPROXY patch series.\n\n"
            f" -- lvs-toolkit maintainers <maintainers@lvs-toolkit.invalid>  {when}\n")
    return gzip.compress(text.encode(), 9, mtime=0)


def _layout(root: Path, tree: Path) -> None:
    """Replace what upstream's make install puts for another distribution."""
    for extra in ("etc/sysconfig", "etc/init.d", "etc/rc.d"):
        if (root / extra).exists():
            shutil.rmtree(root / extra)
    for unit in list(root.rglob("keepalived.service")):
        unit.unlink()
    unit_dir = root / "lib" / "systemd" / "system"
    unit_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEBIAN_FILES / "keepalived.service", unit_dir / "keepalived.service")
    (root / "etc" / "default").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEBIAN_FILES / "default", root / "etc" / "default" / "keepalived")
    conf = root / "etc" / "keepalived" / "keepalived.conf"
    if conf.exists():      # upstream's example as the live file: ship it as a sample
        conf.rename(conf.with_name("keepalived.conf.sample"))
    doc = root / "usr" / "share" / "doc" / SOURCE_PACKAGE
    doc.mkdir(parents=True, exist_ok=True)
    samples = root / "etc" / "keepalived" / "samples"
    if samples.exists():   # examples, not configuration: with the documentation
        shutil.move(samples, doc / "samples")
    shutil.copyfile(DEBIAN_FILES / "copyright", doc / "copyright")
    shutil.copyfile(tree / "LVS-TOOLKIT-SOURCE", doc / "LVS-TOOLKIT-SOURCE")
    for name in ("AUTHOR", "CONTRIBUTORS"):
        if (tree / name).exists():
            shutil.copyfile(tree / name, doc / name)
    note = (tree / "LVS-TOOLKIT-SOURCE").read_text().split(": ", 1)[-1].splitlines()[0]
    (doc / "changelog.Debian.gz").write_bytes(_changelog(package_version(), note))


def _installed_size_kib(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*")
               if p.is_file() and "DEBIAN" not in p.parts) // 1024 + 1


def shlibs_depends(root: Path) -> str:
    """Shared-library dependencies of the binaries (dpkg-shlibdeps)."""
    work = root.parent / "shlibdeps"
    (work / "debian").mkdir(parents=True, exist_ok=True)
    (work / "debian" / "control").write_text(
        f"Source: {SOURCE_PACKAGE}\n\nPackage: {SOURCE_PACKAGE}\nArchitecture: any\n")
    exes = [str(p) for p in (root / "usr" / "sbin").glob("*") if p.is_file()]
    out = _check(_run(["dpkg-shlibdeps", "-O", *[f"-e{e}" for e in exes]], cwd=work),
                 "dpkg-shlibdeps")
    for line in out.splitlines():
        if line.startswith("shlibs:Depends="):
            return line.split("=", 1)[1]
    raise BuildError(f"dpkg-shlibdeps printed no shlibs:Depends: {out}")


def _control(root: Path, tree: Path) -> None:
    debian = root / "DEBIAN"
    debian.mkdir()
    arch = _check(_run(["dpkg", "--print-architecture"]), "dpkg --print-architecture").strip()
    note = (tree / "LVS-TOOLKIT-SOURCE").read_text().split(": ", 1)[-1].splitlines()[0]
    depends = ", ".join(["iproute2", "init-system-helpers (>= 1.54~)", shlibs_depends(root)])
    text = (DEBIAN_FILES / "control.in").read_text()
    note = "\n ".join(textwrap.wrap(f"Built from: {note}.", 72))
    for key, value in {"VERSION": package_version(), "ARCH": arch,
                       "INSTALLED_SIZE": str(_installed_size_kib(root)), "DEPENDS": depends,
                       "UPSTREAM": SOURCE_VERSION.split(":")[-1].split("-")[0],
                       "SOURCE_VERSION": SOURCE_VERSION, "SOURCE_NOTE": note}.items():
        text = text.replace(f"@{key}@", value)
    (debian / "control").write_text(text)
    for script in ("postinst", "prerm", "postrm"):
        shutil.copyfile(DEBIAN_FILES / script, debian / script)
        (debian / script).chmod(0o755)
    conffiles = sorted("/" + str(p.relative_to(root)) for p in (root / "etc").rglob("*")
                       if p.is_file())
    (debian / "conffiles").write_text("".join(c + "\n" for c in conffiles))
    sums = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not path.is_symlink() and rel.parts[0] not in ("DEBIAN", "etc"):
            sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {rel}\n")
    (debian / "md5sums").write_text("".join(sums))


def deb_path(out: Path = OUT) -> Path:
    arch = _run(["dpkg", "--print-architecture"]).stdout.strip() or "amd64"
    return out / f"{SOURCE_PACKAGE}_{package_version().split(':', 1)[-1]}_{arch}.deb"


def package(tree: Path = TREE, out: Path = OUT) -> Path:
    """Build the .deb from a built tree (./inv build --set keepalived first)."""
    if not (tree / "keepalived" / "keepalived").exists():
        raise BuildError(f"{tree} is not built: ./inv build --set keepalived")
    root = out / "pkgroot"
    if root.exists():
        shutil.rmtree(root)
    say("make install (package root)")
    _run(["make", "install", f"DESTDIR={root}"], cwd=tree, log=out / "install.log")
    _layout(root, tree)
    _strip(root)
    _gzip_docs(root)
    _control(root, tree)
    for path in root.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    target = deb_path(out)
    _check(_run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(target)]),
           "dpkg-deb --build")
    say(f"package {target}")
    return target


# ---------------------------------------------------------------- install

def installed_version() -> str | None:
    res = _run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}", SOURCE_PACKAGE])
    status, _, version = res.stdout.partition("|")
    return version if res.returncode == 0 and status.strip() == "ii" else None


def is_ours(version: str | None) -> bool:
    return bool(version) and "+lvs" in str(version)


def _apt(args: Sequence[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _check(subprocess.run(["apt-get", *APT_OPTS, *args], text=True, capture_output=True,
                          env=env), "apt-get " + " ".join(args))


def install(deb: Path) -> str:
    """Install our package (its dependencies from Debian's archive)."""
    require_root("installing keepalived")
    _apt(["install", "--allow-downgrades", str(deb.resolve())])
    version = installed_version()
    if version != package_version():
        raise BuildError(f"after installing {deb.name}, dpkg shows keepalived {version}")
    return version


def uninstall(version: str | None = None) -> str:
    """Debian's keepalived again: ``version``, or the newest of the host's sources."""
    require_root("reinstalling Debian's keepalived")
    version = version or debian_candidate()
    if version is None:
        raise BuildError("the host's apt sources offer no Debian keepalived: apt-get update?")
    _apt(["install", "--allow-downgrades", f"{SOURCE_PACKAGE}={version}"])
    return version


# ---------------------------------------------------------------- ./inv tasks

def build_task() -> str:
    return f"keepalived: {build()}"


def install_task() -> str:
    """Build (if needed), package, install."""
    require_root("./inv install --set keepalived")
    build()
    version = install(package())
    return f"keepalived {version} installed (dpkg -l keepalived; pinning: docs/keepalived.md)"


def uninstall_task() -> str:
    return f"keepalived: Debian's {uninstall()} installed"


TASKS = {"build": build_task, "install": install_task, "uninstall": uninstall_task}
