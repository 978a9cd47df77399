"""The installer's BPF mode (tools/lvs_tools/toa_bpf_steps.py) on fake
trees and recorded probe output: what it concludes, what it writes.

The real thing (load, pin, attach, the boot unit's commands, the
self-test) runs in the guest: tests/kernel/test_toa_bpf_installer.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lvs_tools import toa_bpf, toa_bpf_steps as steps, toa_installer

KVER = "6.1.0-99-amd64"
MOUNTS = """sysfs /sys sysfs rw 0 0
tmpfs /sys/fs/cgroup tmpfs rw 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""


def probe(**drop: str) -> dict:
    """bpftool -j feature probe kernel's shape, with everything toa.bpf.c
    needs, less ``drop`` (kind=name)."""
    out = {"program_types": {f"have_{t}_prog_type": True for t in steps.PROGRAM_TYPES},
           "map_types": {f"have_{t}_map_type": True for t in steps.MAP_TYPES},
           "helpers": {f"{p}_available_helpers": list(h) + ["bpf_ktime_get_ns"]
                       for p, h in steps.HELPERS.items()}}
    for kind, name in drop.items():
        if kind == "prog":
            out["program_types"][f"have_{name}_prog_type"] = False
            del out["helpers"][f"{name}_available_helpers"]
        elif kind == "map":
            out["map_types"][f"have_{name}_map_type"] = False
        else:
            out["helpers"]["sock_ops_available_helpers"].remove(name)
    return out


def test_cgroup2_root_is_where_the_v2_hierarchy_is_mounted():
    assert steps.cgroup2_root(MOUNTS) == Path("/sys/fs/cgroup/unified")
    assert steps.cgroup2_root("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n") == Path("/sys/fs/cgroup")
    assert steps.cgroup2_root(MOUNTS.replace(" cgroup2 rw", " cgroup rw")) is None


def test_missing_features_are_named():
    assert steps.missing_features(probe()) == []
    assert steps.missing_features(probe(helper="bpf_loop")) == \
        ["helper bpf_loop() for sock_ops programs (kernel 5.17 or later)"]
    assert steps.missing_features(probe(map="sk_storage")) == ["BPF map type sk_storage"]
    # a missing program type is named once, not again for each of its helpers
    assert steps.missing_features(probe(prog="cgroup_sock_addr")) == \
        ["BPF program type cgroup_sock_addr"]
    assert "BPF program type sock_ops" in steps.missing_features({})


def test_the_boot_unit_runs_the_installers_own_commands(tmp_path):
    bpftool = shutil.which("bpftool", path="/usr/sbin:/sbin:/usr/bin")
    if bpftool is None:
        pytest.skip("bpftool (Debian package bpftool) is needed to name its path")
    obj = Path("/usr/local/lib/lvs-toa/toa.bpf.o")
    cgroup = Path("/sys/fs/cgroup")
    commands = toa_bpf.bringup_commands(obj, cgroup, ["10.0.3.0/24", "2001:db8:3::/64"])
    cleanup = steps.cleanup_commands(cgroup)
    text = steps.render_unit(commands, cleanup)
    assert steps.unit_commands(text) == {"ExecStartPre": cleanup, "ExecStart": commands,
                                         "ExecStopPost": cleanup}
    # order: load and pin, the check off, two prefixes, the check on, attach x3
    assert commands[0][1:3] == ["prog", "loadall"]
    assert [c[4].rsplit("/", 1)[1] for c in commands[1:5]] == \
        ["toa_conf", "toa_trusted4", "toa_trusted6", "toa_conf"]
    assert commands[4][-4:] == ["02", "00", "00", "00"]
    assert [c[4] for c in commands[5:]] == ["sock_ops", "getpeername4", "getpeername6"]
    assert all(c[-1] == "multi" for c in commands[5:])
    assert cleanup[-1][-2:] == ["-rf", str(toa_bpf.PIN_DIR)]
    # failures of the cleanup are ignored, before the start and after a stop or failure
    assert text.count("ExecStartPre=-") == text.count("ExecStopPost=-") == 4
    analyze = shutil.which("systemd-analyze")
    if analyze:
        unit = tmp_path / steps.UNIT_NAME
        unit.write_text(text)
        res = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
        assert res.returncode == 0 and steps.UNIT_NAME not in res.stderr, res.stderr


def test_unit_words_survive_systemds_expansions():
    """A service's cgroup folder is named with systemd's escapes
    (app-web.service: app\\x2dweb.service); systemd would read that
    backslash as a C escape, and % and $ as specifiers and variables."""
    cgroup = Path("/sys/fs/cgroup/system.slice/app\\x2dweb.service")
    odd = ["/bin/echo", str(cgroup), "100%", "$HOME", "a b", "x\\\\y"]
    text = steps.render_unit([odd], [])
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert "app\\\\x2dweb.service" in line and "100%%" in line and "$$HOME" in line
    assert steps.unit_commands(text)["ExecStart"] == [odd]


def test_trusted_prefixes_are_checked_before_anything_is_written():
    with pytest.raises(toa_installer.InstallerError, match="at most 64"):
        toa_bpf.trusted_commands([f"10.{i}.0.0/16" for i in range(65)])
    # none: the check is off, and stays off
    only = toa_bpf.trusted_commands([]) if shutil.which(
        "bpftool", path="/usr/sbin:/sbin:/usr/bin") else pytest.skip("no bpftool")
    assert [c[-4:] for c in only] == [["00"] * 4, ["00"] * 4]


def fake_root(tmp_path: Path, *, lockdown: str = "[none] integrity confidentiality",
              headers: bool = True) -> Path:
    root = tmp_path / "root"
    (root / "sys/kernel/security").mkdir(parents=True)
    (root / "sys/kernel/security/lockdown").write_text(lockdown + "\n")
    (root / "proc").mkdir()
    (root / "proc/cmdline").write_text("root=/dev/vda ro\n")
    modules = root / "lib/modules" / KVER
    modules.mkdir(parents=True)
    if headers:
        (modules / "build").mkdir()
        (modules / "build" / "Makefile").write_text("# fake\n")
    return root


def have_all(_: str) -> str:
    return "/usr/bin/x"


def test_auto_takes_the_module_where_it_can_be_built_and_loaded(tmp_path):
    mode, why = steps.choose(KVER, fake_root(tmp_path), have_all, lambda p: "1")
    assert mode == "module" and "unsigned modules" in why


def test_auto_takes_ebpf_under_lockdown(tmp_path):
    root = fake_root(tmp_path, lockdown="none [integrity] confidentiality")
    assert steps.choose(KVER, root, have_all, lambda p: "1") == \
        ("ebpf", "this kernel refuses unsigned modules (kernel lockdown is 'integrity')")


def test_auto_takes_ebpf_without_headers_or_compiler(tmp_path):
    root = fake_root(tmp_path, headers=False)
    mode, why = steps.choose(KVER, root, have_all, lambda p: "1")
    assert (mode, why) == ("ebpf", f"the headers of {KVER} are not installed")
    root2 = fake_root(tmp_path / "2")
    mode, why = steps.choose(KVER, root2, lambda t: None if t == "gcc" else "/x", lambda p: "1")
    assert mode == "ebpf" and "gcc is missing: apt-get install gcc" in why


def test_the_two_variants_refuse_each_other(tmp_path):
    root = tmp_path / "root"
    assert steps.module_present(root) == [] and steps.bpf_present(root) == []
    (root / "sys/module/toa").mkdir(parents=True)
    (root / "sys/module/toa/initstate").write_text("live\n")
    (root / "etc/modules-load.d").mkdir(parents=True)
    (root / "etc/modules-load.d/lvs-toa.conf").write_text("toa\n")
    [problem] = steps.module_present(root)
    assert problem.startswith("toa.ko is loaded and toa.ko loads at boot "
                              "(/etc/modules-load.d/lvs-toa.conf): the module and the BPF "
                              "variant are never active together")
    (root / steps.STATE_FILE).parent.mkdir(parents=True)
    (root / steps.STATE_FILE).write_text("{}")
    [problem] = steps.bpf_present(root)
    assert f"the BPF variant is installed ({root / steps.STATE_FILE})" in problem
    assert "run uninstall first" in problem


def test_status_text():
    info = {"installed": True, "cgroup": "/sys/fs/cgroup", "trusted": [],
            "object": "/usr/local/lib/lvs-toa/toa.bpf.o", "pinned": True,
            "attached": ["getpeername4", "getpeername6", "sock_ops"], "unit": True,
            "counters": dict.fromkeys(toa_bpf.STATS, 0) | {"syn_recv_sock_toa": 3}}
    text = steps.format_status(info)
    assert "attached     getpeername4, getpeername6, sock_ops on /sys/fs/cgroup" in text
    assert "trusted      any peer" in text
    assert f"at boot      yes, /{steps.UNIT_FILE}" in text
    assert "syn_recv_sock_toa=3" in text
    gone = steps.format_status({**info, "installed": False, "pinned": False, "attached": [],
                                "unit": False, "trusted": None, "counters": None})
    assert "installed    no" in gone and "attached     no" in gone and "counters" not in gone


def test_an_object_is_found_or_the_way_to_get_one_is_named(tmp_path, monkeypatch):
    with pytest.raises(toa_installer.InstallerError, match="--object .*: no such file"):
        steps.object_source(tmp_path / "nope.o")
    given = tmp_path / "toa.bpf.o"
    given.write_bytes(b"\x7fELF")
    assert steps.object_source(given)[0] == given
    monkeypatch.setattr(steps, "BUILT_OBJECT", tmp_path / "missing.o")
    assert steps.object_source(None, lambda t: "/usr/bin/clang")[0] is None
    with pytest.raises(toa_installer.InstallerError,
                       match="no BPF object: pass --object FILE .* install clang"):
        steps.object_source(None, lambda t: None)


def test_cli_options_that_do_not_fit_are_refused(capsys):
    assert toa_installer.main(["status", "--cgroup", "/sys/fs/cgroup"]) == 1
    assert "--cgroup and --object go with check and install" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        toa_installer.main(["install", "--mode", "dkms"])
