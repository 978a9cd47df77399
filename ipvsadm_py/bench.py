"""Control-plane timing: ipvsadm-py against C ipvsadm on the same machine.

``python -m ipvsadm_py.bench [--rules 10000] [--services N] [--repeats 3] [--json]``
(as root, ip_vs loaded; it works in its own network namespace ``ipvs-bench``)
builds a restore file of RULES lines (services with real servers), then
times, with medians over repeats:

* ``restore``: ``ipvsadm -R < file`` and ``ipvsadm-py -R < file`` on an empty table;
* ``list``: ``ipvsadm -Ln`` and ``ipvsadm-py -Ln`` over the restored table.

:func:`measure` returns the figures (the benchmark task reads
``restore_py_vs_c_ratio`` and ``list_py_vs_c_ratio`` from it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

NS = "ipvs-bench"
PY = str(Path(sys.executable).parent / "ipvsadm-py")


def rules_text(rules: int, services: int) -> str:
    """``services`` services with real servers, ``rules`` lines in all."""
    lines = []
    per = max(1, (rules - services) // services)
    made = 0
    for s in range(services):
        vip = f"10.{100 + s // 62500}.{(s // 250) % 250 + 1}.{s % 250 + 1}:80"
        lines.append(f"-A -t {vip} -s wrr")
        made += 1
        for d in range(per):
            if made >= rules:
                break
            lines.append(f"-a -t {vip} -r 172.16.{d // 250 + 1}.{d % 250 + 1}:8080 -m "
                         f"-w {d % 5 + 1}")
            made += 1
    while made < rules:     # top up with services without real servers
        s += 1
        lines.append(f"-A -t 10.200.{(s // 250) % 250 + 1}.{s % 250 + 1}:81 -s rr")
        made += 1
    return "\n".join(lines) + "\n"


def _ns(*cmd: str, stdin: str | None = None) -> tuple[float, int]:
    """Seconds the command took, and how many lines it wrote on stderr
    (C ipvsadm -R reports refused lines there and goes on)."""
    start = time.perf_counter()
    res = subprocess.run(["ip", "netns", "exec", NS, *cmd], input=stdin, text=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if res.returncode and cmd[-1] != "-R":
        raise RuntimeError(f"{cmd} failed: {res.stderr[:500]}")
    return elapsed, len(res.stderr.splitlines())


def _rules_in_table() -> int:
    res = subprocess.run(["ip", "netns", "exec", NS, "ipvsadm", "-Sn"], capture_output=True,
                         text=True, check=True)
    return len(res.stdout.splitlines())


def measure(rules: int = 10000, services: int = 1000, repeats: int = 3) -> dict[str, float]:
    """Median seconds and the py/C ratios for restore and list."""
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    # Real servers must be unicast to the kernel: it needs the namespace's
    # routing tables, which exist once an interface is up.
    subprocess.run(["ip", "-n", NS, "link", "set", "lo", "up"], check=True)
    text = rules_text(rules, services)
    times: dict[str, list[float]] = {k: [] for k in ("restore_c", "restore_py", "list_c",
                                                      "list_py")}
    refused = {"c": 0, "py": 0}
    restored = {"c": 0, "py": 0}
    try:
        for _ in range(repeats):
            for tool, key in (("ipvsadm", "c"), (PY, "py")):
                _ns("ipvsadm", "-C")
                seconds, errors = _ns(tool, "-R", stdin=text)
                times[f"restore_{key}"].append(seconds)
                refused[key] += errors
                restored[key] = _rules_in_table()
            for tool, key in (("ipvsadm", "c"), (PY, "py")):
                times[f"list_{key}"].append(_ns(tool, "-Ln")[0])
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"rules": rules, "services": services, "repeats": repeats,
            "restored_rules_c": restored["c"], "restored_rules_py": restored["py"],
            "refused_lines_c": refused["c"], "refused_lines_py": refused["py"],
            "restore_c_s": med["restore_c"], "restore_py_s": med["restore_py"],
            "list_c_s": med["list_c"], "list_py_s": med["list_py"],
            "restore_py_vs_c_ratio": med["restore_py"] / med["restore_c"],
            "list_py_vs_c_ratio": med["list_py"] / med["list_c"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rules", type=int, default=10000)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    result = measure(args.rules, args.services, args.repeats)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:24} {value:.3f}" if isinstance(value, float) else f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
