"""``./inv bench``: boot one guest, run every benchmark, report.

Host side: compile the C traffic generator, boot the kernel under QEMU with
our modules (``tools/guest.py``), run ``tools/bench/runner.py`` inside it,
then print the table, write the JSON and draw the chart of the ratios.
See docs/benchmarks.md for the method.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from tools import guest
from tools.kbuild import ROOT

from tools.bench import report
from tools.bench.runner import build_gen

OUT = ROOT / "build" / "bench"
#: Kernel parameters of the benchmark guest: a session hash table sized for
#: a million sessions (the default 2^12 buckets would make the big-table
#: figure a measure of chain length), and unmerged slab caches so that the
#: per-cache growth names ip_vs_conn.
BENCH_APPEND = ("ip_vs.conn_tab_bits=20", "slub_nomerge")
BENCH_MEMORY = "3G"


def guest_config(kver: str, out_dir: Path, *, memory: str = BENCH_MEMORY, cpus: int = 2,
                 timeout: float = 5400, tcg_thread: str = "single") -> guest.GuestConfig:
    """The benchmark guest: writes its result to ``out_dir``."""
    return guest.GuestConfig(kver, cpus=cpus, memory=memory, append=BENCH_APPEND,
                             rwdirs=[out_dir], timeout=timeout, tcg_thread=tcg_thread)


def run(kver: str, *, quick: bool = False, only: str | None = None,
        json_path: Path | None = None,
        memory: str = BENCH_MEMORY, cpus: int = 2, timeout: float = 5400,
        tcg_thread: str = "single") -> dict[str, Any]:
    """Measure in a guest of ``kver``; returns the result (also written out).

    ``tcg_thread="multi"`` runs the guest with QEMU's multi-threaded TCG (one
    host thread per vCPU) instead of the single-threaded TCG of every other
    guest; the one step that reloads toa.ko (TOA on the real server) is then
    left out (README, Tests)."""
    out_dir = OUT / kver
    out_dir.mkdir(parents=True, exist_ok=True)
    word = re.sub(r"[^A-Za-z0-9_.-]+", "-", only).strip("-") if only else ""
    stem = (("bench-quick" if quick else "bench") + (f"-only-{word}" if word else "")
            + ("-mttcg" if tcg_thread == "multi" else "") + (f"-{cpus}cpu" if cpus != 2 else ""))
    result_file = out_dir / f"result-{stem}.json"
    result_file.unlink(missing_ok=True)
    build_gen()
    cmd = (f"{sys.executable} -m tools.bench.runner --out {shlex.quote(str(result_file))}"
           + (" --quick" if quick else "") + (f" --only {shlex.quote(only)}" if only else "")
           + (" --mttcg" if tcg_thread == "multi" else ""))
    cfg = guest_config(kver, out_dir, memory=memory, cpus=cpus, timeout=timeout,
                       tcg_thread=tcg_thread)
    rc = guest.run(cfg, cmd, console=out_dir / "console.log")
    if not result_file.exists():
        raise guest.GuestError(f"the benchmark guest wrote no result (exit status {rc}); "
                               f"console: {out_dir / 'console.log'}")
    result = json.loads(result_file.read_text())
    result["guest_memory"] = memory
    result["guest_append"] = list(BENCH_APPEND)
    result["guest_tcg_thread"] = tcg_thread
    target = Path(json_path) if json_path else out_dir / f"{stem}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(report.table(result))
    print(f"\nJSON: {target}")
    chart = target.with_suffix(".png")
    try:
        report.chart(result, chart)
        print(f"chart: {chart}")
    except ImportError as exc:           # matplotlib comes with ./inv (requirements.lock)
        print(f"no chart: {exc}")
    if result.get("kernel_log_problems"):
        print("\nthe guest's kernel log shows problems (see console.log):")
        for line in result["kernel_log_problems"]:
            print("  " + line)
    return result

