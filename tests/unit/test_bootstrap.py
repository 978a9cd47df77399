"""tools/bootstrap.py's plan, from dpkg/apt outputs recorded on a Debian 12 machine.

The recorded states (tests/fixtures/bootstrap/):
  dpkg-fresh        the tools installed, no kernel yet (a new machine)
  dpkg-61-only      Debian 12's 6.1 installed, the 6.12 line not yet
  dpkg-both-lines   both lines complete, metapackages on 6.1
  dpkg-moved-meta   both lines, and linux-image-amd64/linux-headers-amd64 moved
                    to the backports version by an older ./inv (the state in
                    which a second checkout asked for linux-source-6.1 at the
                    6.12 version)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools import bootstrap

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bootstrap"
V61 = "6.1.192-3"
V612 = "6.12.95-1~bpo12+1"
DPKG = ("dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Package}|${Version}\n")


class Recorded:
    """Answers the commands the bootstrap asks, from recorded outputs; any
    other command fails the test (so an unexpected apt call is seen)."""

    def __init__(self, dpkg_state: str):
        self.answers = {
            DPKG: FIXTURES / f"dpkg-{dpkg_state}.txt",
            ("apt-cache", "madison", "linux-image-amd64"):
                FIXTURES / "madison-linux-image-amd64.txt",
            ("apt-cache", "show", f"linux-image-amd64={V612}"): FIXTURES / "show-6.12.txt",
            ("apt-cache", "show", f"linux-image-amd64={V61}"): FIXTURES / "show-6.1.txt",
        }
        self.asked: list[tuple[str, ...]] = []

    def __call__(self, cmd):
        key = tuple(cmd[:3]) if cmd[0] == "dpkg-query" else tuple(cmd)
        self.asked.append(key)
        assert key in self.answers, f"unexpected command {cmd}"
        return 0, self.answers[key].read_text()


def plan(state: str) -> tuple[bootstrap.Plan, Recorded]:
    run = Recorded(state)
    return bootstrap.read_plan(bootstrap.Apt(run)), run


def test_parse_installed_keeps_installed_packages_only():
    text = "ii |linux-image-amd64|6.1.192-3\nun |linux-headers-generic|\n" \
           "rc |linux-image-6.1.0-56-amd64|6.1.190-1\nii |linux-libc-dev:amd64|6.1.192-3\n"
    assert bootstrap.parse_installed(text) == {"linux-image-amd64": "6.1.192-3",
                                               "linux-libc-dev": "6.1.192-3"}


def test_madison_gives_version_and_suite():
    text = (FIXTURES / "madison-linux-image-amd64.txt").read_text()
    assert bootstrap.madison(text) == [(V612, "bookworm-backports"),
                                       (V61, "bookworm-security"),
                                       ("6.1.176-1", "bookworm")]


def test_depends_on_picks_the_versioned_image():
    show = (FIXTURES / "show-6.12.txt").read_text()
    assert bootstrap.depends_on(show, "linux-image-") == "linux-image-6.12.95+deb12-amd64"
    assert bootstrap.depends_on(show, "linux-headers-") is None
    multi = "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2), foo\n"
    assert bootstrap.depends_on(multi, "linux-image-6.1") == "linux-image-6.1.0-56-amd64"


def test_newest_abi_compares_numbers_not_text():
    installed = {"linux-image-6.1.0-9-amd64": "6.1.27-1",
                 "linux-image-6.1.0-57-amd64": V61,
                 "linux-image-6.12.9+deb12-amd64": "6.12.9-1~bpo12+1",
                 "linux-image-6.12.10+deb12-amd64": "6.12.10-1~bpo12+1"}
    assert bootstrap.newest_abi(installed, bootstrap.IMAGE_61) == "linux-image-6.1.0-57-amd64"
    assert bootstrap.newest_abi(installed, bootstrap.IMAGE_612) == \
        "linux-image-6.12.10+deb12-amd64"
    # the 6.1 pattern never takes a 6.12 image (the old prefix match did)
    assert bootstrap.newest_abi({"linux-image-6.12.95+deb12-amd64": V612},
                                bootstrap.IMAGE_61) is None


def test_fresh_machine_gets_both_lines_without_moving_metapackages():
    result, _ = plan("fresh")
    assert result.tools == []
    assert result.kernels == [
        [f"linux-image-amd64={V61}", f"linux-headers-amd64={V61}",
         f"linux-image-6.1.0-57-amd64={V61}", f"linux-headers-6.1.0-57-amd64={V61}",
         f"linux-source-6.1={V61}"],
        [f"linux-image-6.12.95+deb12-amd64={V612}",
         f"linux-headers-6.12.95+deb12-amd64={V612}", f"linux-source-6.12={V612}"],
    ]
    for step in result.kernels:
        for package in step:
            name, version = package.split("=")
            # every package by exact version; metapackages only at Debian 12's
            assert version
            if name.endswith("-amd64") and not re.search(r"\d", name):
                assert "bpo" not in version


def test_61_only_adds_the_612_line():
    result, _ = plan("61-only")
    assert result.kernels == [[f"linux-image-6.12.95+deb12-amd64={V612}",
                               f"linux-headers-6.12.95+deb12-amd64={V612}",
                               f"linux-source-6.12={V612}"]]


def test_complete_machine_needs_nothing_and_asks_apt_nothing():
    result, run = plan("both-lines")
    assert result.kernels == [] and result.tools == [] and result.notes == []
    assert run.asked == [DPKG]


def test_moved_metapackage_second_checkout_needs_nothing():
    """The reported failure: linux-image-amd64 at the 6.12 version must not
    make the 6.1 line look like 6.12 (linux-source-6.1=6.12...)."""
    result, _ = plan("moved-meta")
    assert result.kernels == []
    assert len(result.notes) == 1
    assert f"linux-image-amd64={V61} linux-headers-amd64={V61}" in result.notes[0]


@pytest.mark.parametrize("state", ["both-lines", "moved-meta"])
def test_ensure_system_on_a_complete_machine_runs_no_apt(state, monkeypatch):
    ran = []
    monkeypatch.setattr(bootstrap, "sh", lambda cmd, **kw: ran.append(cmd) or "")
    monkeypatch.setattr(bootstrap, "ensure_backports", lambda: ran.append("sources"))
    bootstrap.ensure_system(bootstrap.Apt(Recorded(state)))
    assert ran == []


def test_ensure_system_on_a_fresh_machine_updates_then_installs(monkeypatch):
    ran = []
    monkeypatch.setattr(bootstrap, "sh", lambda cmd, **kw: ran.append(cmd) or "")
    monkeypatch.setattr(bootstrap, "ensure_backports", lambda: ran.append("sources"))
    monkeypatch.setattr(bootstrap.os, "geteuid", lambda: 0)
    bootstrap.ensure_system(bootstrap.Apt(Recorded("fresh")))
    assert ran[0] == "sources" and ran[1] == ["apt-get", "update"]
    installs = [cmd for cmd in ran[2:] if "install" in cmd]
    assert len(installs) == 2
    assert all("-t" not in cmd for cmd in installs)


class Units:
    """systemctl's answers for the unit states; the actions are collected."""

    def __init__(self, enabled: str, active: str):
        self.states = {"is-enabled": enabled, "is-active": active}
        self.acted: list[list[str]] = []

    def run(self, cmd):
        return 0, self.states[cmd[1]] + "\n"

    def act(self, cmd):
        self.acted.append(cmd)


@pytest.mark.parametrize("enabled,active,systemd,actions", [
    ("enabled", "active", True, ["disable", "stop"]),
    ("enabled", "inactive", False, ["disable"]),
    ("disabled", "inactive", True, []),
    ("disabled", "active", True, ["stop"]),
])
def test_the_package_daemons_are_silenced_on_the_host(enabled, active, systemd, actions):
    units = Units(enabled, active)      # every unit in the same state
    expected = [["systemctl", action, unit]
                for unit in bootstrap.SILENT_UNITS for action in actions]
    assert bootstrap.silence_units(units.run, units.act, systemd) == expected
    assert units.acted == expected


def test_bird_is_among_the_tools():
    assert "bird2" in bootstrap.TOOLS and "bird.service" in bootstrap.SILENT_UNITS


def test_haproxy_is_among_the_tools_and_does_not_run_on_the_host():
    assert "haproxy" in bootstrap.TOOLS and "haproxy.service" in bootstrap.SILENT_UNITS
