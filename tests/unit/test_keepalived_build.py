"""tools/keepalived_build.py without network or root: apt and .dsc parsing,
the package version, Debian's configure options, the patch series."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools import keepalived_build as kb
from tools.kbuild import BuildError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keepalived"

PRINT_URIS = """\
Reading package lists...
NOTICE: 'keepalived' packaging is maintained in the 'Git' version control system at:
https://salsa.debian.org/debian/pkg-keepalived.git
Need to get 1190 kB of source archives.
'http://deb.debian.org/debian/pool/main/k/keepalived/keepalived_2.2.7-1.dsc' keepalived_2.2.7-1.dsc 2116 SHA256:6e0aad92343adfe2d2855365ce036bb638a6789cc5c52062c0c1ad451b32abad
'http://deb.debian.org/debian/pool/main/k/keepalived/keepalived_2.2.7.orig.tar.gz' keepalived_2.2.7.orig.tar.gz 1180180 SHA256:c61940d874154a560a54627ecf7ef47adebdf832164368d10bf242a4d9b7d49d
'http://deb.debian.org/debian/pool/main/k/keepalived/keepalived_2.2.7-1.debian.tar.xz' keepalived_2.2.7-1.debian.tar.xz 8080 SHA256:4b3b57d0dea79d717e07dd962aa303c7a131f55b2a87be984f5e578c2836c703
"""

DSC = """\
Format: 3.0 (quilt)
Source: keepalived
Version: 1:2.2.7-1
Checksums-Sha1:
 ec5f603e13c2704070d0f5be79ef7d85b311e15b 1180180 keepalived_2.2.7.orig.tar.gz
Checksums-Sha256:
 c61940d874154a560a54627ecf7ef47adebdf832164368d10bf242a4d9b7d49d 1180180 keepalived_2.2.7.orig.tar.gz
 4b3b57d0dea79d717e07dd962aa303c7a131f55b2a87be984f5e578c2836c703 8080 keepalived_2.2.7-1.debian.tar.xz
Files:
 5f310b66a043a1fb31acf65af15e95bc 1180180 keepalived_2.2.7.orig.tar.gz
"""


def test_print_uris_gives_each_file_with_its_digest():
    files = kb.parse_print_uris(PRINT_URIS)
    assert [f.name for f in files] == ["keepalived_2.2.7-1.dsc", "keepalived_2.2.7.orig.tar.gz",
                                       "keepalived_2.2.7-1.debian.tar.xz"]
    assert files[0].sha256 == kb.KNOWN_DSC_SHA256["1:2.2.7-1"]
    assert files[1].size == 1180180 and files[1].url.endswith("/keepalived_2.2.7.orig.tar.gz")


def test_dsc_checksums_sha256_only():
    files = kb.parse_dsc(DSC)
    assert files == {
        "keepalived_2.2.7.orig.tar.gz":
            (1180180, "c61940d874154a560a54627ecf7ef47adebdf832164368d10bf242a4d9b7d49d"),
        "keepalived_2.2.7-1.debian.tar.xz":
            (8080, "4b3b57d0dea79d717e07dd962aa303c7a131f55b2a87be984f5e578c2836c703")}
    with pytest.raises(BuildError):
        kb.parse_dsc("Source: keepalived\n")


def test_files_are_checked_against_the_dsc(tmp_path):
    orig = tmp_path / "keepalived_2.2.7.orig.tar.gz"
    orig.write_bytes(b"x" * 10)
    digest = kb.sha256_of(orig)
    dsc = f"Checksums-Sha256:\n {digest} 10 {orig.name}\n {'0' * 64} 5 keepalived_2.2.7-1.debian.tar.xz\n"
    # the packaging tarball may be missing (a mirror without it)
    assert kb._check_against_dsc(dsc, tmp_path) == (orig, None)
    orig.write_bytes(b"y" * 10)
    with pytest.raises(BuildError, match="differs from the .dsc"):
        kb._check_against_dsc(dsc, tmp_path)


def compare(a: str, op: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0


@pytest.mark.parametrize("other, op", [
    ("1:2.2.7-1", "gt"), ("1:2.2.7-1+b2", "gt"), ("1:2.2.7-1+b9", "gt"),
    ("1:2.2.7-1+deb12u1", "gt"), ("1:2.2.7-2", "lt"), ("1:2.2.8-1", "lt")])
def test_package_version_sorts_above_debians_builds_of_the_source(other, op):
    ours = kb.package_version()
    assert ours == "1:2.2.7-1+lvs1"
    assert compare(ours, op, other)


def test_configure_options_are_debians(monkeypatch):
    """The options of Debian's 1:2.2.7-1+b2 (its --version output, recorded)
    with this machine's triple; only the compiler flags differ (they come
    from dpkg-buildflags, and Debian's name its own build folder)."""
    text = (FIXTURES / "debian-2.2.7-1+b2-version.txt").read_text()
    debian = kb.version_fields(text)["configure options"]
    debian_opts = debian.split(" CFLAGS=")[0].split()
    monkeypatch.setattr(kb, "dpkg_arch", lambda var: {"DEB_BUILD_GNU_TYPE": "x86_64-linux-gnu",
                                                      "DEB_HOST_MULTIARCH": "x86_64-linux-gnu"}[var])
    ours = kb.configure_args()
    assert [o for o in ours if o not in kb.CONFIGURE_CACHE] == debian_opts


def test_series_names_existing_patches_with_headers():
    patches = kb.our_patches()
    assert patches, "keepalived/series is empty"
    for patch in patches:
        text = patch.read_text()
        assert text.startswith("From: ") and "\nSubject: [PATCH] " in text, patch.name
        assert "\n---\n" in text and "\ndiff --git a/" in text, patch.name


def test_our_files_are_new_files_of_the_check_library():
    files = [str(p) for p in kb.our_files()]
    assert "keepalived/check/check_fnat.c" in files
    assert all(f.startswith(("keepalived/check/", "keepalived/include/")) for f in files)


def test_our_files_never_replace_an_upstream_file(tmp_path):
    ka = tmp_path / "ka"
    (ka / "src" / "lib").mkdir(parents=True)
    (ka / "src" / "lib" / "parser.c").write_text("ours\n")
    tree = tmp_path / "out" / "tree"
    (tree / "lib").mkdir(parents=True)
    (tree / "lib" / "parser.c").write_text("upstream\n")
    with pytest.raises(BuildError, match="would replace an upstream file"):
        kb.copy_our_files(tree, ka)
    (ka / "src" / "lib" / "new.c").write_text("new\n")
    (ka / "src" / "lib" / "parser.c").unlink()
    kb.copy_our_files(tree, ka)
    assert (tree / "lib" / "new.c").read_text() == "new\n"
    (ka / "src" / "lib" / "new.c").write_text("changed\n")
    kb.copy_our_files(tree, ka)          # ours may be updated in place
    assert (tree / "lib" / "new.c").read_text() == "changed\n"


def test_version_fields_of_the_recorded_output():
    fields = kb.version_fields((FIXTURES / "debian-2.2.7-1+b2-version.txt").read_text())
    assert fields["Config options"].split()[:3] == ["NFTABLES", "LVS", "REGEX"]
    assert "LIBIPVS_NETLINK" in fields["System options"]


def _fake_source(folder: Path, monkeypatch) -> Path:
    orig = folder / "keepalived_2.2.7.orig.tar.gz"
    orig.write_bytes(b"orig")
    dsc = folder / "keepalived_2.2.7-1.dsc"
    dsc.write_text(f"Checksums-Sha256:\n {kb.sha256_of(orig)} 4 {orig.name}\n"
                   f" {'0' * 64} 9 keepalived_2.2.7-1.debian.tar.xz\n")
    monkeypatch.setitem(kb.KNOWN_DSC_SHA256, "1:2.2.7-1", kb.sha256_of(dsc))
    return dsc


def test_a_checked_earlier_fetch_needs_no_network(tmp_path, monkeypatch):
    _fake_source(tmp_path, monkeypatch)
    # the packaging tarball is neither there nor known to be absent: fetch again
    assert kb.cached_source(tmp_path) is None
    marker = tmp_path / "keepalived_2.2.7-1.debian.tar.xz.absent"
    marker.write_text("404\n")
    cached = kb.cached_source(tmp_path)
    assert cached is not None and cached.debian is None
    assert "not served" in cached.note
    old = marker.stat().st_mtime - kb.ABSENT_FOR - 10
    import os
    os.utime(marker, (old, old))           # a day later: ask the archive again
    assert kb.cached_source(tmp_path) is None


def test_a_changed_file_is_not_taken_from_the_cache(tmp_path, monkeypatch):
    _fake_source(tmp_path, monkeypatch)
    (tmp_path / "keepalived_2.2.7-1.debian.tar.xz.absent").write_text("404\n")
    (tmp_path / "keepalived_2.2.7.orig.tar.gz").write_bytes(b"evil")
    assert kb.cached_source(tmp_path) is None


def test_debian_patches_in_quilt_order(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "debian" / "patches").mkdir(parents=True)
    (pkg / "debian" / "patches" / "series").write_text("# comment\nb.patch\na.patch -p1\n\n")
    tarball = tmp_path / "keepalived_2.2.7-1.debian.tar.xz"
    subprocess.run(["tar", "-cJf", str(tarball), "-C", str(pkg), "debian"], check=True)
    found = kb.debian_patches(tarball, tmp_path / "work")
    assert [p.name for p in found] == ["b.patch", "a.patch"]


def test_a_failed_build_removes_the_old_daemon_and_says_why(tmp_path, monkeypatch):
    binary = tmp_path / "tree" / "keepalived" / "keepalived"
    binary.parent.mkdir(parents=True)
    binary.write_text("an older build")
    failed = tmp_path / kb.FAILED.name

    def broken_make(tree, jobs):
        raise BuildError("check_fnat.c:12: error: expected ';'")
    monkeypatch.setattr(kb, "fetch", lambda out: kb.Source("1:2.2.7-1", tmp_path, tmp_path,
                                                           None, "test"))
    monkeypatch.setattr(kb, "stage", lambda source, tree: False)
    monkeypatch.setattr(kb, "make", broken_make)
    with pytest.raises(BuildError):
        kb.build(tmp_path)
    assert not binary.exists()
    assert "check_fnat.c:12" in kb.missing(binary, failed)

    def good_make(tree, jobs):
        binary.write_text("new")
        return binary
    monkeypatch.setattr(kb, "make", good_make)
    monkeypatch.setattr(kb, "version_line", lambda b: "Keepalived v2.2.7")
    monkeypatch.setattr(kb, "unpack_debian_binary", lambda out: None)
    assert kb.build(tmp_path) == binary
    assert kb.missing(binary, failed) is None


def test_a_never_built_daemon_says_how_to_build_it(tmp_path):
    reason = kb.missing(tmp_path / "keepalived", tmp_path / "build-failed")
    assert "./inv build --set keepalived" in reason
