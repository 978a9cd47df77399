"""Our keepalived package on this host: install over Debian's, and back.

It changes the installed packages, so it needs root.  The host's state is
put back afterwards: Debian's keepalived if it was installed, ours if it was
(the package just built), none if there was none; /etc/default/keepalived as
it was.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tools import keepalived_build as kb
from tools import keepalived_pkg as pkg

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="changes the installed packages: needs root"),
]

DEFAULTS = Path("/etc/default/keepalived")


def version_line() -> str:
    res = subprocess.run(["/usr/sbin/keepalived", "--version"], text=True, capture_output=True)
    return (res.stdout + res.stderr).splitlines()[0]


def policy() -> str:
    return subprocess.run(["apt-cache", "policy", "keepalived"], text=True,
                          capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def deb() -> Path:
    reason = kb.missing()
    assert reason is None, reason
    return pkg.package()


@pytest.fixture
def host_state_restored(deb):
    before = pkg.installed_version()
    defaults = DEFAULTS.read_bytes() if DEFAULTS.exists() else None
    yield before
    now = pkg.installed_version()
    if before is None:
        subprocess.run(["apt-get", "remove", "-y", "-q", "keepalived"], check=True,
                       capture_output=True)
    elif pkg.is_ours(before) and not pkg.is_ours(now):
        pkg.install(deb)
    elif not pkg.is_ours(before) and now != before:
        pkg.uninstall(before)          # the very version the host had
    if defaults is not None:
        DEFAULTS.write_bytes(defaults)


def test_package_contents(deb):
    info = subprocess.run(["dpkg-deb", "--info", str(deb)], text=True, capture_output=True,
                          check=True).stdout
    assert f"Version: {kb.package_version()}" in info and "Package: keepalived" in info
    assert "libnl-genl-3-200" in info and "libsnmp" in info, info
    files = subprocess.run(["dpkg-deb", "--contents", str(deb)], text=True,
                           capture_output=True, check=True).stdout
    for path in ("./usr/sbin/keepalived", "./usr/bin/genhash", "./etc/default/keepalived",
                 "./lib/systemd/system/keepalived.service",
                 "./usr/share/doc/keepalived/copyright",
                 "./usr/share/doc/keepalived/LVS-TOOLKIT-SOURCE",
                 "./usr/share/man/man5/keepalived.conf.5.gz"):
        assert path in files, path
    assert "sysconfig" not in files


def test_install_over_debians_and_back(deb, host_state_restored):
    debian = kb.debian_candidate()
    assert debian and not pkg.is_ours(debian)
    assert subprocess.run(["dpkg", "--compare-versions", kb.package_version(), "gt",
                           debian]).returncode == 0

    version = pkg.install(deb)
    assert version == kb.package_version()
    assert "lvs-toolkit FULLNAT/SYNPROXY" in version_line()
    assert f"Installed: {version}" in policy()
    listed = subprocess.run(["dpkg", "-l", "keepalived"], text=True, capture_output=True,
                            check=True).stdout
    assert re.search(rf"^ii\s+keepalived\s+{re.escape(version)}\s", listed, re.M), listed
    unit = Path("/lib/systemd/system/keepalived.service").read_text()
    assert "EnvironmentFile=-/etc/default/keepalived" in unit and "$DAEMON_ARGS" in unit

    back = pkg.uninstall()
    assert back == debian and pkg.installed_version() == debian
    assert "lvs-toolkit" not in version_line()
    assert f"Installed: {debian}" in policy()
