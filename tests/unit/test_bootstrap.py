"""apt output parsing of tools/bootstrap.py, from recorded outputs."""

from __future__ import annotations

from tools import bootstrap

MADISON = """\
linux-image-amd64 | 6.12.95-1~bpo12+1 | http://deb.debian.org/debian bookworm-backports/main amd64 Packages
linux-image-amd64 |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-amd64 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
"""

SHOW = """\
Package: linux-image-amd64
Version: 6.12.95-1~bpo12+1
Depends: linux-image-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1)
Recommends: apparmor
"""


def test_madison_versions_by_suite():
    assert bootstrap.madison_versions(MADISON, "bookworm-backports") == ["6.12.95-1~bpo12+1"]
    assert bootstrap.madison_versions(MADISON, "bookworm") == ["6.1.176-1"]
    assert bootstrap.madison_versions(MADISON, "bullseye") == []


def test_depends_on_picks_the_versioned_image():
    assert bootstrap.depends_on(SHOW, "linux-image-") == "linux-image-6.12.95+deb12-amd64"
    assert bootstrap.depends_on(SHOW, "linux-headers-") is None
    multi = "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2), foo\n"
    assert bootstrap.depends_on(multi, "linux-image-6.1") == "linux-image-6.1.0-56-amd64"
