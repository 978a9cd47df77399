"""Host side of the benchmark: flow spaces, the table, the chart."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from tools.bench import host, report, runner
from tools.kbuild import ROOT


@pytest.mark.parametrize("n", [1, 100, 1000, 60001, 120_000, 1_000_000])
def test_flow_space_covers_n_with_coprime_sizes(n):
    addrs, ports = runner.flow_space(n)
    assert addrs * ports >= n
    assert math.gcd(addrs, ports) == 1
    assert ports <= 65535 - 1024 and addrs <= 254


def _result(**values):
    base = {k: None for k in runner.KEYS}
    base.update(kernel="6.12.0-test", guest_cpus=2, repeats=5, quick=False,
                reasons={"synproxy_vs_syncookie_ratio": "not available yet: no counters"})
    base.update(values)
    return base


def test_table_shows_values_targets_and_reasons():
    text = report.table(_result(fnat_vs_nat_pps_ratio=0.97, list_py_vs_c_ratio=2.0,
                                nat_pps=1234.0))
    assert "fnat_vs_nat_pps_ratio" in text and "0.970" in text and "met" in text
    assert "missed (+33%)" in text
    assert "not available yet: no counters" in text
    assert "1,234" in text
    md = report.markdown(_result(bytes_per_session_nat=320))
    assert "| `bytes_per_session_nat` | 320 |" in md


def test_chart_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    path = report.chart(_result(fnat_vs_nat_pps_ratio=0.9, restore_py_vs_c_ratio=12.0),
                        tmp_path / "c.png")
    assert path.stat().st_size > 1000


def test_bench_guest_runs_single_threaded_tcg_unless_mttcg(tmp_path, monkeypatch):
    """./inv bench --mttcg reaches the guest's QEMU as tcg,thread=multi; by
    default the benchmark guest is single-threaded as every other guest."""
    assert host.guest_config("6.12.0-test", tmp_path).tcg_thread == "single"
    assert host.guest_config("6.12.0-test", tmp_path, tcg_thread="multi").tcg_thread == "multi"
    sys.path.insert(0, str(ROOT))
    import tasks

    asked = []
    monkeypatch.setattr(host, "run", lambda kver, **kw: asked.append(kw["tcg_thread"]))
    monkeypatch.setattr(tasks, "_kernels", lambda kver: [kver])
    tasks.bench.body(None, kver="6.12.0-test", no_build=True, mttcg=True)
    tasks.bench.body(None, kver="6.12.0-test", no_build=True)
    assert asked == ["multi", "single"]


def test_a_step_name_with_spaces_reaches_the_guest_whole(tmp_path, monkeypatch):
    """./inv bench --only "local port": one argument in the guest, and a
    result file name without the space (it once split the command line)."""
    import shlex
    commands = []
    monkeypatch.setattr(host, "OUT", tmp_path)
    monkeypatch.setattr(host, "build_gen", lambda: None)
    monkeypatch.setattr(host.guest, "run", lambda cfg, cmd, **kw: commands.append(cmd) or 2)
    with pytest.raises(host.guest.GuestError):
        host.run("6.12.0-test", only="local port")
    argv = shlex.split(commands[0])
    assert argv[argv.index("--only") + 1] == "local port"
    out = Path(argv[argv.index("--out") + 1])
    assert out.name == "result-bench-only-local-port.json"


def test_table_names_the_tcg_mode():
    assert "TCG thread=multi" in report.table(_result(guest_tcg_thread="multi"))
    assert "TCG thread" not in report.table(_result())
