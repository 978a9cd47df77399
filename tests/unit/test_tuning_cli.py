"""The lvs-tune command, the systemd unit and the tune tasks, on fake trees."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lvs_tools.tuning import cli, systemd

from tests.unit.tuning_fake import FakeHost, add_virtio_nic

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake(tmp_path) -> FakeHost:
    host = FakeHost(tmp_path, 16, nodes=2)
    host.add_nic("eth0", 8, node=1)
    add_virtio_nic(host, "eth1", 2)
    host.irqbalance(enabled=True, active=True)
    return host


def lvs_tune(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_dry_run_prints_a_table_and_writes_nothing(fake, capsys):
    before = fake.snapshot()
    code, out, _ = lvs_tune(capsys, "apply", "--dry-run", "--root", str(fake.root))
    assert code == 0 and fake.snapshot() == before
    lines = out.splitlines()
    assert lines[0].startswith("profile default, strategy per-cpu:")
    header = next(line for line in lines if line.startswith("KIND"))
    assert header.split() == ["KIND", "TARGET", "NOW", "NEW", "WHY"]
    assert any(line.split()[:2] == ["service-active", "irqbalance"] for line in lines)
    irq = next(line for line in lines if line.startswith("irq "))
    assert irq.split()[1:6] == ["/proc/irq/24/smp_affinity", "ffff", "(CPU", "0-15)", "0001"]
    assert "dry run: nothing written" in out


def test_strategy_override_and_json_plan(fake, capsys):
    code, out, _ = lvs_tune(capsys, "plan", "--json", "--strategy", "numa-local",
                            "--interface", "eth0", "--root", str(fake.root))
    plan = json.loads(out)
    assert code == 0 and plan["strategy"] == "numa-local"
    cpus = {c["new"] for c in plan["changes"] if c["kind"] == "irq"}
    assert cpus == {f"{1 << c:04x}" for c in range(8, 16)}


def test_apply_audit_revert_cycle(fake, capsys):
    root = str(fake.root)
    before = fake.snapshot()
    code, out, _ = lvs_tune(capsys, "audit", "--root", root)
    assert code == 1 and "deviation(s) from profile default" in out
    assert "irqbalance: is active" in out
    code, out, _ = lvs_tune(capsys, "apply", "--root", root)
    assert code == 0 and "old values saved in /run/lvs-toolkit/tuning-state.json" in out
    code, out, _ = lvs_tune(capsys, "audit", "--root", root, "--profile",
                            str(write_profile(fake, "offloads: {gro: off}\nirqbalance: off\n")))
    assert code == 0 and out.startswith("OK")
    code, out, _ = lvs_tune(capsys, "audit", "--json", "--root", root)
    assert code == 1 and [d["target"] for d in json.loads(out)] == ["note"]   # conn_tab_bits
    code, out, _ = lvs_tune(capsys, "revert", "--root", root)
    assert code == 0 and out.startswith("restored ")
    assert fake.snapshot() == before
    code, _, err = lvs_tune(capsys, "revert", "--root", root)
    assert code == 1 and "nothing to revert" in err


def write_profile(fake: FakeHost, text: str) -> Path:
    path = fake.root.parent / f"{fake.root.name}-profile.yaml"   # outside the tree
    path.write_text(text)
    return path


def test_problems_make_apply_fail_cleanly(fake, capsys):
    fake.remove("proc/irq/24")
    before = fake.snapshot()
    code, out, err = lvs_tune(capsys, "apply", "--root", str(fake.root))
    assert code == 1 and fake.snapshot() == before
    assert "PROBLEMS (1; the plan cannot be applied)" in out
    assert "/proc/irq/24/smp_affinity: missing" in out
    assert "nothing written" in err


def test_bad_profile_is_a_usage_error(fake, capsys):
    path = write_profile(fake, "strategy: fastest\n")
    code, _, err = lvs_tune(capsys, "plan", "--root", str(fake.root), "--profile", str(path))
    assert code == 2 and "strategy: 'fastest'" in err


def test_facts_text_and_json(fake, capsys):
    code, out, _ = lvs_tune(capsys, "facts", "--root", str(fake.root))
    assert code == 0 and "CPUs: 16 online (0-15) of 16 possible" in out
    assert "eth1: driver virtio_net" in out and "virtio0-input.1" in out
    code, out, _ = lvs_tune(capsys, "facts", "--json", "--root", str(fake.root))
    data = json.loads(out)
    assert data["cpus"]["nodes"]["1"] == list(range(8, 16))
    assert len(data["nics"]["eth0"]["irqs"]) == 9


def test_installed_command_runs(fake):
    exe = Path(sys.executable).parent / "lvs-tune"
    if not exe.exists():
        pytest.skip("lvs-tune is not installed in this environment (run ./inv)")
    res = subprocess.run([str(exe), "plan", "--root", str(fake.root)], capture_output=True,
                         text=True)
    assert res.returncode == 0 and "strategy per-cpu" in res.stdout


# --- the systemd unit --------------------------------------------------------

def unit_sections(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str
    parser.read_string(text)
    return parser


def test_unit_structure():
    text = systemd.unit_text("/usr/local/bin/lvs-tune", "/etc/lvs-toolkit/tuning.yaml")
    unit = unit_sections(text)
    assert unit.sections() == ["Unit", "Service", "Install"]
    assert unit["Service"]["Type"] == "oneshot"
    assert unit["Service"]["RemainAfterExit"] == "yes"
    assert unit["Service"]["ExecStart"] == \
        "/usr/local/bin/lvs-tune apply --profile /etc/lvs-toolkit/tuning.yaml"
    assert "network-online.target" in unit["Unit"]["After"].split()
    assert "irqbalance.service" in unit["Unit"]["After"].split()
    assert unit["Unit"]["Before"] == "keepalived.service"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    with pytest.raises(ValueError):
        systemd.unit_text("lvs-tune")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path, capsys):
    exe = tmp_path / "lvs-tune"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert cli.main(["unit", "--exec", str(exe)]) == 0
    unit = tmp_path / systemd.UNIT_NAME
    unit.write_text(capsys.readouterr().out)
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert systemd.UNIT_NAME not in res.stderr, res.stderr
    # The check itself can fail: a unit with a relative ExecStart does.
    bad = tmp_path / "bad-lvs-tune.service"
    bad.write_text(unit.read_text().replace(str(exe), "lvs-tune"))
    res = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True,
                         text=True, cwd=tmp_path)
    assert res.returncode != 0


# --- the tune task collection ------------------------------------------------

def test_tune_collection_is_wired_into_tasks():
    sys.path.insert(0, str(ROOT))
    import tasks

    tune = tasks.ns.collections["tune"]
    assert {"plan", "apply", "revert", "audit"} <= set(tune.task_names)


def test_tune_tasks_run_on_a_fake_tree(fake):
    res = subprocess.run([str(ROOT / "inv"), "tune.apply", "--dry-run", "--root",
                          str(fake.root)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "dry run: nothing written" in res.stdout
    res = subprocess.run([str(ROOT / "inv"), "tune.audit", "--root", str(fake.root)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 1 and "deviation(s)" in res.stdout
