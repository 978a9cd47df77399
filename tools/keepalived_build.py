"""Build keepalived with FULLNAT and SYNPROXY from Debian's source package.

The keepalived sources are never kept in this repository.  They come from
Debian's source package at build time, exactly as the kernel modules come
from Debian's kernel source; a small patch series of ours (hooks, fields,
registrations: ``keepalived/series``, ``keepalived/patches/``) and our own
files (``keepalived/src/``, copied to the same paths of the tree) are added,
and the result is configured with the options Debian's own build used::

    build/keepalived/apt/      a separate apt state with a deb-src entry
    build/keepalived/source/   the .dsc and its tarballs, checked against it
    build/keepalived/tree/     staged, patched, configured and built tree
    build/keepalived/tree/keepalived/keepalived   the daemon (tests use it)
    build/keepalived/*.deb     the package (``package()``, tools/keepalived_pkg.py)

Fetching: ``apt-get source --print-uris`` in the separate apt state gives
the .dsc with its SHA-256 from Debian's signed Sources index; the .dsc gives
the SHA-256 of each tarball.  Debian's packaging tarball (``.debian.tar.xz``,
its patches) is applied when the archive serves it; some mirrors answer 404
for it, and then the build goes on from the upstream tarball alone and says
so (``source/SOURCE`` records which).  ``LVS_KEEPALIVED_SOURCE=DIR`` takes
the files from a folder instead (offline), checked against the .dsc whose
digest is recorded here.

Standard library only, like tools/kbuild.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from tools.kbuild import ROOT, BuildError, read_series

KA_DIR = ROOT / "keepalived"
OUT = ROOT / "build" / "keepalived"
TREE = OUT / "tree"
BINARY = TREE / "keepalived" / "keepalived"
GENHASH = TREE / "bin" / "genhash"
#: Written when the last build failed (its error); the binary is removed then,
#: so nothing runs a daemon older than the sources.
FAILED = OUT / "build-failed"

SOURCE_PACKAGE = "keepalived"
#: The Debian source version the patch series fits (bookworm's).
SOURCE_VERSION = "1:2.2.7-1"
#: SHA-256 of its .dsc (as Debian's Sources index lists it): the anchor of
#: every check when the files come from LVS_KEEPALIVED_SOURCE.
KNOWN_DSC_SHA256 = {
    "1:2.2.7-1": "6e0aad92343adfe2d2855365ce036bb638a6789cc5c52062c0c1ad451b32abad",
}
#: Our packaging revision: the package is SOURCE_VERSION + "+lvs" + this.
PACKAGE_REVISION = "1"
ARCHIVE = "http://deb.debian.org/debian"
SUITE = "bookworm"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

#: configure options of Debian's keepalived 1:2.2.7-1+b2, as its
#: ``keepalived --version`` prints them ("configure options:"), without the
#: compiler flags (those come from dpkg-buildflags, as Debian's came) and
#: with the build triple and multiarch folder of this machine.
DEBIAN_CONFIGURE = (
    "--build={build}", "--prefix=/usr", "--includedir=${{prefix}}/include",
    "--mandir=${{prefix}}/share/man", "--infodir=${{prefix}}/share/info",
    "--sysconfdir=/etc", "--localstatedir=/var", "--disable-option-checking",
    "--disable-silent-rules", "--libdir=${{prefix}}/lib/{multiarch}",
    "--runstatedir=/run", "--disable-maintainer-mode", "--disable-dependency-tracking",
    "--enable-snmp", "--enable-sha1", "--enable-snmp-rfcv2", "--enable-snmp-rfcv3",
    "--enable-dbus", "--enable-json", "--enable-bfd", "--enable-regex",
    "--with-init=systemd", "build_alias={build}",
)
#: configure finds libmagic by itself; Debian's build had none (not in its
#: Build-Depends; its binary links no libmagic), so neither has ours.
CONFIGURE_CACHE = ("ac_cv_lib_magic_magic_open=no",)


def say(msg: str) -> None:
    print(f"[keepalived] {msg}", flush=True)


def _run(cmd: Sequence[str], *, cwd: Path | None = None, env: dict | None = None,
         log: Path | None = None, nice: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command; with ``log``, its output goes there and an error shows its end."""
    argv = (["nice", "-n", "10"] if nice else []) + list(cmd)
    if log is None:
        return subprocess.run(argv, cwd=cwd, env=env, text=True, capture_output=True)
    with log.open("w") as out:
        res = subprocess.run(argv, cwd=cwd, env=env, text=True, stdout=out,
                             stderr=subprocess.STDOUT)
    if res.returncode:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BuildError(f"{' '.join(cmd[:3])}... failed ({res.returncode}); "
                         f"last lines of {log}:\n{tail}")
    return res


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_version(source_version: str = SOURCE_VERSION) -> str:
    """Our package's version: Debian's source version + "+lvs" + revision.

    It sorts above every Debian build of that source (1:2.2.7-1+b2 is a
    binNMU of 1:2.2.7-1; "+lvs" > "+b", "+deb") and below the next upstream
    or Debian revision (1:2.2.7-2, 1:2.2.8-1)."""
    return f"{source_version}+lvs{PACKAGE_REVISION}"


# ---------------------------------------------------------------- apt, .dsc

def apt_options(state: Path) -> list[str]:
    """apt options for a state of its own: the host's sources stay untouched."""
    return ["-o", f"Dir::State::Lists={state / 'lists'}",
            "-o", f"Dir::Etc::SourceList={state / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::Cache={state / 'cache'}",
            "-o", "APT::Sandbox::User=root" if os.geteuid() == 0 else "Debug::NoLocking=1"]


def write_apt_state(state: Path) -> None:
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "sources.list").write_text(
        f"# lvs-toolkit: Debian's source packages for the keepalived build\n"
        f"deb-src [signed-by={KEYRING}] {ARCHIVE} {SUITE} main\n")


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    url: str
    name: str
    size: int
    sha256: str | None


def parse_print_uris(text: str) -> list[RemoteFile]:
    """``apt-get source --print-uris``: 'URL' NAME SIZE SHA256:HEX lines."""
    found = []
    for line in text.splitlines():
        m = re.match(r"'([^']+)'\s+(\S+)\s+(\d+)\s+(?:SHA256:([0-9a-f]{64}))?", line)
        if m:
            found.append(RemoteFile(m.group(1), m.group(2), int(m.group(3)), m.group(4)))
    return found


def parse_dsc(text: str) -> dict[str, tuple[int, str]]:
    """Checksums-Sha256 of a .dsc: file name -> (size, sha256)."""
    files: dict[str, tuple[int, str]] = {}
    block = False
    for line in text.splitlines():
        if line.startswith("Checksums-Sha256:"):
            block = True
            continue
        if block:
            if not line.startswith(" "):
                break
            digest, size, name = line.split()
            files[name] = (int(size), digest)
    if not files:
        raise BuildError("the .dsc has no Checksums-Sha256 field")
    return files


def download(url: str, dest: Path, sha256: str | None) -> bool:
    """Fetch ``url`` to ``dest`` and check it; False when the server answers 404."""
    if dest.exists() and sha256 and sha256_of(dest) == sha256:
        return True
    part = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=120) as resp, part.open("wb") as out:
            shutil.copyfileobj(resp, out)
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        if exc.code == 404:
            return False
        raise BuildError(f"{url}: HTTP {exc.code}") from exc
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise BuildError(f"{url}: {exc}") from exc
    if sha256 and sha256_of(part) != sha256:
        part.unlink()
        raise BuildError(f"{url}: SHA-256 differs from Debian's ({sha256})")
    part.rename(dest)
    return True


@dataclasses.dataclass(frozen=True)
class Source:
    """The source files of one build, each checked."""

    version: str
    dsc: Path
    orig: Path
    debian: Path | None         # None: the archive did not serve it
    origin: str                 # where they came from, for the build output and docs

    @property
    def note(self) -> str:
        return ("upstream tarball + Debian's patches" if self.debian else
                "upstream tarball only (Debian's packaging tarball was not served: "
                "Debian's patches are not applied)")


def _check_against_dsc(dsc_text: str, folder: Path) -> tuple[Path, Path | None]:
    files = parse_dsc(dsc_text)
    orig = debian = None
    for name, (size, digest) in files.items():
        path = folder / name
        if not path.exists():
            if ".debian." in name:
                continue
            raise BuildError(f"{path} is missing (named by the .dsc)")
        if path.stat().st_size != size or sha256_of(path) != digest:
            raise BuildError(f"{path} differs from the .dsc (size {size}, SHA-256 {digest})")
        if ".orig." in name:
            orig = path
        elif ".debian." in name:
            debian = path
    if orig is None:
        raise BuildError("the .dsc names no .orig tarball")
    return orig, debian


def fetch_local(folder: Path, dest: Path, version: str = SOURCE_VERSION) -> Source:
    """The files of ``folder`` (LVS_KEEPALIVED_SOURCE), checked from the recorded .dsc digest."""
    upstream = version.split(":")[-1]
    dsc = folder / f"{SOURCE_PACKAGE}_{upstream}.dsc"
    if not dsc.exists():
        raise BuildError(f"{dsc} is missing")
    want = KNOWN_DSC_SHA256.get(version)
    if want is None or sha256_of(dsc) != want:
        raise BuildError(f"{dsc} is not Debian's .dsc of {SOURCE_PACKAGE} {version}")
    dest.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file() and path.name.startswith(f"{SOURCE_PACKAGE}_"):
            shutil.copy2(path, dest / path.name)
    orig, debian = _check_against_dsc(dsc.read_text(), dest)
    return Source(version, dest / dsc.name, orig, debian, f"folder {folder}")


ABSENT_FOR = 24 * 3600      # seconds a 404 of the packaging tarball is believed


def recently_absent(path: Path) -> bool:
    marker = path.with_name(path.name + ".absent")
    return ".debian." in path.name and marker.exists() and \
        time.time() - marker.stat().st_mtime < ABSENT_FOR


def cached_source(dest: Path, version: str = SOURCE_VERSION) -> Source | None:
    """The files of an earlier fetch, if they are all there and still check
    (the .dsc against its recorded digest, the tarballs against the .dsc):
    a rebuild needs no network.  A packaging tarball the archive did not
    serve is asked for again after a day."""
    dsc = dest / f"{SOURCE_PACKAGE}_{version.split(':')[-1]}.dsc"
    want = KNOWN_DSC_SHA256.get(version)
    if not dsc.exists() or want is None or sha256_of(dsc) != want:
        return None
    names = parse_dsc(dsc.read_text())
    if not all((dest / name).exists() or recently_absent(dest / name) for name in names):
        return None
    try:
        orig, debian = _check_against_dsc(dsc.read_text(), dest)
    except BuildError:
        return None
    return Source(version, dsc, orig, debian, f"{dest} (fetched before, checked)")


def fetch(out: Path = OUT, version: str = SOURCE_VERSION) -> Source:
    """Debian's source of ``version``, downloaded and checked."""
    local = os.environ.get("LVS_KEEPALIVED_SOURCE")
    dest = out / "source"
    if local:
        return fetch_local(Path(local), dest, version)
    cached = cached_source(dest, version)
    if cached:
        return cached
    state = out / "apt"
    write_apt_state(state)
    opts = apt_options(state)
    say(f"reading Debian's source index ({ARCHIVE} {SUITE}, separate apt state)")
    res = _run(["apt-get", *opts, "-q", "update"])
    if res.returncode:
        raise BuildError(f"apt-get update (separate state {state}) failed:\n{res.stderr}")
    res = _run(["apt-get", *opts, "source", "--print-uris", f"{SOURCE_PACKAGE}={version}"])
    uris = parse_print_uris(res.stdout)
    dsc_file = next((u for u in uris if u.name.endswith(".dsc")), None)
    if res.returncode or dsc_file is None:
        raise BuildError(f"Debian's archive has no source {SOURCE_PACKAGE}={version}:\n"
                         f"{res.stdout}{res.stderr}")
    dest.mkdir(parents=True, exist_ok=True)
    if not download(dsc_file.url, dest / dsc_file.name, dsc_file.sha256):
        raise BuildError(f"{dsc_file.url}: not found")
    files = parse_dsc((dest / dsc_file.name).read_text())
    base = dsc_file.url.rsplit("/", 1)[0]
    for name, (_, digest) in files.items():
        if not download(f"{base}/{name}", dest / name, digest):
            if ".debian." not in name:
                raise BuildError(f"{base}/{name}: not found (404)")
            say(f"{base}/{name}: 404, Debian's packaging tarball is not served")
            (dest / f"{name}.absent").write_text(f"{base}/{name}: 404\n")
    orig, debian = _check_against_dsc((dest / dsc_file.name).read_text(), dest)
    return Source(version, dest / dsc_file.name, orig, debian, base)


# ---------------------------------------------------------------- staging

def our_patches(ka_dir: Path = KA_DIR) -> list[Path]:
    series = ka_dir / "series"
    paths = []
    for name in read_series(series):
        path = ka_dir / "patches" / name
        if not path.exists():
            raise BuildError(f"{series} names {name}, which is not in {ka_dir / 'patches'}")
        paths.append(path)
    return paths


def our_files(ka_dir: Path = KA_DIR) -> list[Path]:
    """Our own sources, relative to keepalived/src (= their place in the tree)."""
    src = ka_dir / "src"
    return sorted(p.relative_to(src) for p in src.rglob("*") if p.is_file())


def apply_patch(tree: Path, patch: Path, what: str) -> None:
    res = _run(["patch", "-p1", "--batch", "--forward", "--fuzz=0",
                "--no-backup-if-mismatch", "-d", str(tree), "-i", str(patch)])
    if res.returncode:
        raise BuildError(f"patch {patch.name} does not apply to {what}:\n"
                         f"{(res.stdout + res.stderr).strip()}")


def untar(archive: Path, dest: Path) -> None:
    """Unpack as the invoking user (the tarballs carry the packager's ids)."""
    res = _run(["tar", "-xf", str(archive), "-C", str(dest), "--no-same-owner",
                "--no-same-permissions"])
    if res.returncode:
        raise BuildError(f"tar -xf {archive} failed: {res.stderr.strip()}")


def debian_patches(debian_tar: Path, work: Path) -> list[Path]:
    """Debian's quilt series from its packaging tarball, in order."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    untar(debian_tar, work)
    series = work / "debian" / "patches" / "series"
    if not series.exists():
        return []
    return [work / "debian" / "patches" / line.split()[0]
            for line in series.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def stage_digest(source: Source, ka_dir: Path = KA_DIR, tree: Path = TREE) -> str:
    """What the staged and configured tree depends on (our own files excepted:
    they are copied in on every build, and make rebuilds what they change)."""
    digest = hashlib.sha256()
    digest.update(sha256_of(source.orig).encode())
    digest.update(sha256_of(source.debian).encode() if source.debian else b"no-debian")
    digest.update((ka_dir / "series").read_bytes())
    for patch in our_patches(ka_dir):
        digest.update(patch.name.encode() + patch.read_bytes())
    digest.update(" ".join(configure_args()).encode())
    digest.update(repr(sorted(build_flags(tree).items())).encode())
    return digest.hexdigest()


def stage(source: Source, tree: Path = TREE, ka_dir: Path = KA_DIR) -> bool:
    """Extract, patch (Debian's, then ours), add our files, autoreconf.

    Returns whether the tree was staged anew (False: it was up to date)."""
    stamp = tree.parent / "tree.stamp"
    digest = stage_digest(source, ka_dir, tree)
    if tree.exists() and stamp.exists() and stamp.read_text() == digest:
        copy_our_files(tree, ka_dir)
        return False
    stamp.unlink(missing_ok=True)
    if tree.exists():
        shutil.rmtree(tree)
    say(f"staging {source.orig.name} ({source.note})")
    extract = tree.parent / "extract"
    if extract.exists():
        shutil.rmtree(extract)
    extract.mkdir(parents=True)
    untar(source.orig, extract)
    top = [p for p in extract.iterdir() if p.is_dir()]
    if len(top) != 1:
        raise BuildError(f"{source.orig.name} does not have one top folder")
    top[0].rename(tree)
    extract.rmdir()
    write_release_date(tree)
    if source.debian:
        for patch in debian_patches(source.debian, tree.parent / "debian-packaging"):
            apply_patch(tree, patch, f"keepalived {source.version} (Debian's patch)")
    for patch in our_patches(ka_dir):
        apply_patch(tree, patch, f"keepalived {source.version}")
    (tree / "LVS-TOOLKIT-SOURCE").write_text(
        f"{SOURCE_PACKAGE} {source.version}: {source.note}\nfrom {source.origin}\n")
    copy_our_files(tree, ka_dir)
    say("autoreconf")
    _run(["autoreconf", "-fi"], cwd=tree, log=tree.parent / "autoreconf.log", nice=True)
    configure(tree)
    stamp.write_text(digest)
    return True


def write_release_date(tree: Path) -> None:
    """lib/git-commit.h with the date of the newest upstream source file.

    keepalived's Makefile writes it from the newest file when it is missing;
    patched and added files would make that the build's day.  Written
    before patching, it keeps the release date (as Debian's build shows:
    "Keepalived v2.2.7 (01/16,2022)")."""
    newest = max(p.stat().st_mtime for p in tree.rglob("*")
                 if p.is_file() and (p.suffix in (".c", ".h") or
                                     p.name in ("Makefile.am", "configure.ac")))
    day = time.gmtime(newest)
    (tree / "lib" / "git-commit.h").write_text(
        "/* Dates are UTC: the newest upstream source file (lvs-toolkit) */\n"
        f"#define GIT_DATE\t\"{time.strftime('%m/%d,%Y', day)}\"\n"
        f"#define GIT_YEAR\t\"{day.tm_year}\"\n")


def copy_our_files(tree: Path, ka_dir: Path = KA_DIR) -> None:
    """keepalived/src/X -> tree/X, only where the content changed (make
    rebuilds what a copy touches).  Our files never replace upstream ones."""
    for rel in our_files(ka_dir):
        src, dest = ka_dir / "src" / rel, tree / rel
        if dest.exists() and dest.read_bytes() == src.read_bytes():
            continue
        if dest.exists() and not (tree.parent / "ours" / rel).exists():
            raise BuildError(f"keepalived/src/{rel} would replace an upstream file")
        (tree.parent / "ours" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree.parent / "ours" / rel).touch()
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


# ---------------------------------------------------------------- configure, make

def dpkg_arch(var: str) -> str:
    res = _run(["dpkg-architecture", f"-q{var}"])
    if res.returncode:
        raise BuildError(f"dpkg-architecture -q{var} failed: {res.stderr.strip()}")
    return res.stdout.strip()


def configure_args() -> list[str]:
    """Debian's options for this machine, plus the cache answers."""
    build, multiarch = dpkg_arch("DEB_BUILD_GNU_TYPE"), dpkg_arch("DEB_HOST_MULTIARCH")
    return [opt.format(build=build, multiarch=multiarch) for opt in DEBIAN_CONFIGURE] \
        + list(CONFIGURE_CACHE)


def build_flags(tree: Path) -> dict[str, str]:
    """CFLAGS, CPPFLAGS, LDFLAGS as Debian's build takes them (dpkg-buildflags;
    DEB_BUILD_PATH: its -ffile-prefix-map names the tree)."""
    flags = {}
    env = dict(os.environ, DEB_BUILD_PATH=str(tree))
    for name in ("CFLAGS", "CPPFLAGS", "LDFLAGS"):
        res = _run(["dpkg-buildflags", "--get", name], env=env)
        if res.returncode:
            raise BuildError(f"dpkg-buildflags --get {name} failed: {res.stderr.strip()}")
        flags[name] = res.stdout.strip()
    return flags


def configure(tree: Path) -> None:
    say("configure (Debian's options)")
    flags = build_flags(tree)
    args = configure_args() + [f"{k}={v}" for k, v in flags.items()]
    _run(["./configure", *args], cwd=tree, log=tree.parent / "configure.log", nice=True)


def make(tree: Path = TREE, jobs: int = 0) -> Path:
    say("make")
    _run(["make", f"-j{jobs or os.cpu_count() or 1}"], cwd=tree,
         log=tree.parent / "make.log", nice=True)
    if not (tree / "keepalived" / "keepalived").exists():
        raise BuildError(f"make finished without {tree / 'keepalived' / 'keepalived'}")
    return tree / "keepalived" / "keepalived"


def debian_candidate() -> str | None:
    """The newest keepalived version the host's apt sources offer (Debian's)."""
    res = _run(["apt-cache", "madison", SOURCE_PACKAGE])
    versions = [line.split("|")[1].strip() for line in res.stdout.splitlines()
                if line.count("|") >= 2 and "+lvs" not in line]
    return versions[0] if versions else None


def unpack_debian_binary(out: Path = OUT) -> Path | None:
    """Debian's own keepalived package, unpacked into build/keepalived/debian-bin
    (the tests compare ours with it when /usr/sbin/keepalived is ours)."""
    dest = out / "debian-bin"
    binary = dest / "usr" / "sbin" / "keepalived"
    if binary.exists():
        return binary
    version = debian_candidate()
    if version is None:
        say("no Debian keepalived in the host's apt sources: debian-bin not made")
        return None
    debs = out / "debian-deb"
    debs.mkdir(parents=True, exist_ok=True)
    res = _run(["apt-get", "download", f"{SOURCE_PACKAGE}={version}"], cwd=debs)
    found = sorted(debs.glob(f"{SOURCE_PACKAGE}_*.deb"))
    if res.returncode or not found:
        say(f"apt-get download {SOURCE_PACKAGE}={version} failed: {res.stderr.strip()}")
        return None
    res = _run(["dpkg-deb", "-x", str(found[-1]), str(dest)])
    if res.returncode:
        raise BuildError(f"dpkg-deb -x {found[-1]} failed: {res.stderr.strip()}")
    return binary


def build(out: Path = OUT, jobs: int = 0) -> Path:
    """Fetch, stage, configure and make; returns the daemon's path.

    A failure removes the daemon an earlier build left and records the error
    (tests and bench then report it instead of running the old daemon)."""
    failed = out / FAILED.name
    try:
        source = fetch(out)
        say(f"source {SOURCE_PACKAGE} {source.version}: {source.note}")
        stage(source, out / "tree")
        binary = make(out / "tree", jobs)
    except BuildError as exc:
        (out / "tree" / "keepalived" / "keepalived").unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{exc}\n")
        raise
    failed.unlink(missing_ok=True)
    say(f"built {binary} ({version_line(binary)})")
    unpack_debian_binary(out)
    return binary


def version_line(binary: Path) -> str:
    """The first line of ``keepalived --version`` (it says lvs-toolkit)."""
    res = _run([str(binary), "--version"])
    return (res.stdout + res.stderr).splitlines()[0] if (res.stdout + res.stderr) else "?"


def version_fields(text: str) -> dict[str, str]:
    """The 'configure options:', 'Config options:' and 'System options:'
    fields of ``keepalived --version`` output."""
    fields = {}
    for key in ("configure options", "Config options", "System options"):
        m = re.search(rf"^{key}:\s*(.*)$", text, re.MULTILINE)
        if m:
            fields[key] = m.group(1).strip()
    return fields


def missing(binary: Path = BINARY, failed: Path = FAILED) -> str | None:
    """Why the built daemon cannot be used (the last build's error, or how
    to build it), or None when it is there."""
    if failed.exists():
        return f"the last keepalived build failed: {failed.read_text().strip()[-2000:]}"
    if not binary.exists():
        return f"{binary} is missing: ./inv build --set keepalived"
    return None


def require_binary() -> Path:
    """The built daemon, or a BuildError saying why it is not there."""
    reason = missing()
    if reason:
        raise BuildError(reason)
    return BINARY


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="build keepalived with FULLNAT/SYNPROXY")
    ap.add_argument("--jobs", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        build(jobs=args.jobs)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
