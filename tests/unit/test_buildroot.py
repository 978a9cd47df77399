"""Build roots of other Debian releases: which kernels they build, their sources."""

from __future__ import annotations

import pytest

from tools import buildroot, kbuild


@pytest.mark.parametrize("kver, release", [
    ("6.12.117+deb13-amd64", "trixie"),      # Debian 13's own 6.12
    ("7.3.4+deb13-amd64", "trixie"),         # trixie-backports' newest line
    ("5.10.0-46-amd64", "bullseye"),         # Debian 11
    ("6.1.0-57-amd64", None),                # this host's release builds these
    ("6.12.95+deb12-amd64", None),
    ("6.12.117+deb13-cloud-amd64", None),    # not a flavour we build for
])
def test_each_kernel_is_built_by_its_own_release(kver, release, monkeypatch):
    monkeypatch.delenv(buildroot.INSIDE, raising=False)
    found = buildroot.release_for(kver)
    assert (found.name if found else None) == release


def test_inside_a_root_the_kernel_is_built_there(monkeypatch):
    monkeypatch.setenv(buildroot.INSIDE, "1")
    assert buildroot.release_for("6.12.117+deb13-amd64") is None


def test_a_root_has_its_release_updates_and_security():
    trixie = next(r for r in buildroot.RELEASES if r.name == "trixie")
    lines = trixie.sources().splitlines()
    assert f"deb {buildroot.MIRROR} trixie main" in lines
    assert f"deb {buildroot.MIRROR} trixie-backports main" in lines
    assert f"deb {buildroot.SECURITY} trixie-security main" in lines


def test_the_stamp_changes_with_what_a_root_is_made_of(monkeypatch):
    trixie = next(r for r in buildroot.RELEASES if r.name == "trixie")
    before = buildroot._stamp(trixie)
    monkeypatch.setattr(buildroot, "ROOT_PACKAGES", buildroot.ROOT_PACKAGES + ("dwarves",))
    assert buildroot._stamp(trixie) != before


def test_a_foreign_build_needs_root_and_mmdebstrap(monkeypatch):
    monkeypatch.setattr(buildroot.os, "geteuid", lambda: 1000)
    with pytest.raises(kbuild.BuildError, match="run as root"):
        buildroot._require_root("6.12.117+deb13-amd64")
    monkeypatch.setattr(buildroot.os, "geteuid", lambda: 0)
    monkeypatch.setattr(buildroot.shutil, "which", lambda name: None)
    with pytest.raises(kbuild.BuildError, match="apt-get install mmdebstrap"):
        buildroot._require_root("6.12.117+deb13-amd64")


def test_images_of_this_release_are_installed_with_apt(monkeypatch):
    monkeypatch.delenv(buildroot.INSIDE, raising=False)
    with pytest.raises(kbuild.BuildError, match="apt-get install linux-image-6.1.0-57-amd64"):
        buildroot.fetch_image("6.1.0-57-amd64")


def _unpacked(tmp_path, image_rel, modules_rel):
    (tmp_path / modules_rel / "kernel").mkdir(parents=True)
    image = tmp_path / image_rel
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"MZ")
    return image


@pytest.mark.parametrize("kver, image_rel, modules_rel", [
    # up to 6.x: the image in /boot, the modules in /lib/modules
    ("6.12.117+deb13-amd64", "boot/vmlinuz-6.12.117+deb13-amd64",
     "lib/modules/6.12.117+deb13-amd64"),
    # 7.x (linux-binary-K, linux-modules-K): both under /usr/lib/modules/K
    ("7.3.4+deb13-amd64", "usr/lib/modules/7.3.4+deb13-amd64/vmlinuz",
     "usr/lib/modules/7.3.4+deb13-amd64"),
])
def test_the_image_and_modules_are_found_where_each_line_ships_them(
        tmp_path, kver, image_rel, modules_rel):
    image = _unpacked(tmp_path, image_rel, modules_rel)
    assert buildroot.unpacked_kernel(tmp_path, kver) == (tmp_path / modules_rel, image)


def test_packages_without_the_image_are_refused(tmp_path):
    (tmp_path / "usr/lib/modules/7.3.4+deb13-amd64/kernel").mkdir(parents=True)
    with pytest.raises(kbuild.BuildError, match="hold no image"):
        buildroot.unpacked_kernel(tmp_path, "7.3.4+deb13-amd64", ["linux-modules-7.3.4"])


# ---------------------------------------------------------------- the newest kernels

MADISON = """\
linux-image-amd64 | 7.3.4-1~bpo13+1 | http://deb.debian.org/debian trixie-backports/main amd64 Packages
linux-image-amd64 | 6.12.118-1 | http://deb.debian.org/debian-security trixie-security/main amd64 Packages
linux-image-amd64 | 6.12.117-1 | http://deb.debian.org/debian trixie/main amd64 Packages
"""


def test_the_newest_version_of_a_suite_is_read_from_madison():
    assert buildroot.madison_version(MADISON, "trixie-backports") == "7.3.4-1~bpo13+1"
    assert buildroot.madison_version(MADISON, "trixie") == "6.12.117-1"
    assert buildroot.madison_version(MADISON, "trixie-security") == "6.12.118-1"
    assert buildroot.madison_version(MADISON, "bookworm-backports") is None
    assert buildroot.madison_version("", "trixie") is None


@pytest.mark.parametrize("show, kver", [
    ("Package: linux-image-amd64\nVersion: 6.12.118-1\n"
     "Depends: linux-image-6.12.118+deb13-amd64 (= 6.12.118-1)\n", "6.12.118+deb13-amd64"),
    ("Version: 7.3.4-1~bpo13+1\nDepends: linux-base-amd64 (= 7.3.4-1~bpo13+1), "
     "linux-image-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-modules-amd64\n",
     "7.3.4+deb13-amd64"),
    ("Version: 5.10.262-1\nDepends: linux-image-5.10.0-46-amd64 (= 5.10.262-1)\n",
     "5.10.0-46-amd64"),
    ("Version: 1\nDepends: linux-base\n", None),
])
def test_the_kernel_of_the_metapackage_is_its_dependency(show, kver):
    assert buildroot.image_dependency(show) == kver


def test_every_line_is_built_by_a_root_and_one_of_them_is_primary():
    assert [line for line in buildroot.LINES if line.primary] == [buildroot.LINES[0]]
    assert {line.release.name for line in buildroot.LINES} == {"trixie", "bullseye"}


def test_the_plan_runs_the_whole_suite_on_the_primary_lines_and_core_elsewhere():
    from tools import lines
    trixie, backports, bullseye = buildroot.LINES
    full, core = lines.split(["6.1.0-57-amd64", "6.12.95+deb12-amd64"],
                             [(trixie, "6.12.118+deb13-amd64"),
                              (backports, "7.3.4+deb13-amd64"),
                              (bullseye, "5.10.0-46-amd64")])
    assert full == ["6.1.0-57-amd64", "6.12.118+deb13-amd64"]
    # the oldest line first: its guest takes longest
    assert core == ["5.10.0-46-amd64", "6.12.95+deb12-amd64", "7.3.4+deb13-amd64"]
    # a line whose newest kernel is another's (no backport newer than the
    # release) runs once, on the bigger set
    full, core = lines.split(["6.1.0-57-amd64"], [(trixie, "6.12.118+deb13-amd64"),
                                                   (backports, "6.12.118+deb13-amd64")])
    assert full == ["6.1.0-57-amd64", "6.12.118+deb13-amd64"] and core == []
