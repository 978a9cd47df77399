"""keepalived figures of ``./inv bench`` (docs/benchmarks.md, docs/keepalived.md).

::

    k-lb: our keepalived (build tree)           k-rs1..k-rs4: an accept-and-close
    1,000 FULLNAT virtual servers x 4 real       listener on port 80 each (counts
    servers, one local address each              the health checks it receives)

* **load**: time from starting keepalived with the file to a complete table
  (every service with its 4 real servers in /proc/net/ip_vs; the local
  address of a service is added before its real servers), against
  ``ipvsadm-py -R`` of the same rules (-A, -P, -a ... -b) in the same
  namespace: ``keepalived_load_vs_restore_ratio`` (lower is better).
* **checks**: with that file running (one TCP_CHECK per real server, delay_loop
  5: 4,000 checks per 5 s), the CPU share of keepalived's checker process
  over a window: ``keepalived_check_cpu_percent`` (100 = one CPU), with the
  checks the real servers' kernels completed per second (PassiveOpens, as
  context: the rate keepalived achieved), the CPU time per check, accept
  queue overflows, and whether every real server stayed in.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tools import netlab
from tools.keepalived_build import BINARY, missing
from tools.keepalived_lab import IPVSADM_PY, Keepalived
from tools.netlab import Topology

N_RS = 4
LADDR = "10.0.3.1"
PORT = 80
KEYS = ("keepalived_load_vs_restore_ratio", "keepalived_check_cpu_percent")


def vip(i: int) -> str:
    return f"10.10.{i // 250}.{i % 250 + 1}"


def config(n_vs: int, delay_loop: int) -> str:
    real = "".join(f"    real_server {netlab.rs_addr(r)} {PORT} {{\n        weight 1\n"
                   f"        TCP_CHECK {{\n            connect_timeout 3\n        }}\n    }}\n"
                   for r in range(1, N_RS + 1))
    return "".join(f"virtual_server {vip(i)} {PORT} {{\n    delay_loop {delay_loop}\n"
                   f"    lb_algo rr\n    lb_kind FNAT\n    protocol TCP\n"
                   f"    local_address {{\n        {LADDR}\n    }}\n{real}}}\n"
                   for i in range(n_vs))


def restore_rules(n_vs: int) -> str:
    lines = []
    for i in range(n_vs):
        svc = f"-t {vip(i)}:{PORT}"
        lines += [f"-A {svc} -s rr", f"-P {svc} -z {LADDR}"]
        lines += [f"-a {svc} -r {netlab.rs_addr(r)}:{PORT} -b -w 1" for r in range(1, N_RS + 1)]
    return "\n".join(lines) + "\n"


def table_size(proc_net_ip_vs: str) -> tuple[int, int]:
    """(services, real servers) of a /proc/net/ip_vs text."""
    services = dests = 0
    for line in proc_net_ip_vs.splitlines():
        if line.startswith(("TCP ", "UDP ", "SCTP ", "FWM ")):
            services += 1
        elif line.startswith("  -> ") and not line.startswith("  -> RemoteAddress"):
            dests += 1
    return services, dests


class Acceptor:
    """Accepts and closes on a port of a namespace, counting connections."""

    def __init__(self, topo: Topology, ns: str) -> None:
        with topo.inside(ns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", PORT))
        self.sock.listen(4096)
        self.count = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()
            self.count += 1

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def tcp_counters(topo: Topology) -> dict[str, int]:
    """Handshakes the real servers' kernels completed (PassiveOpens: every
    check, whether or not the acceptor has taken it yet) and accept queue
    overflows (ListenOverflows: checks the acceptors were too slow for)."""
    total = {"PassiveOpens": 0, "ListenOverflows": 0}
    for r in range(1, N_RS + 1):
        text = topo.sh(topo.rs(r), "cat /proc/net/snmp /proc/net/netstat").stdout.splitlines()
        for names, values in zip(text[::2], text[1::2]):
            for name, value in zip(names.split()[1:], values.split()[1:]):
                if name in total:
                    total[name] += int(value)
    return total


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def restore_time(topo: Topology, n_vs: int, work: Path) -> float:
    rules = work / "rules.txt"
    rules.write_text(restore_rules(n_vs))
    argv = ["ip", "netns", "exec", topo.lb, str(IPVSADM_PY), "-R"]
    started = time.monotonic()
    with rules.open() as stdin:
        subprocess.run(argv, stdin=stdin, check=True, capture_output=True, timeout=1800)
    took = time.monotonic() - started
    got = table_size(topo.sh(topo.lb, "cat /proc/net/ip_vs").stdout)
    if got != (n_vs, n_vs * N_RS):
        raise RuntimeError(f"ipvsadm-py -R made {got}, not {(n_vs, n_vs * N_RS)}")
    topo.sh(topo.lb, f"{IPVSADM_PY} -C")
    return took


def load_time(ka: Keepalived, n_vs: int, text: str, timeout: float) -> float:
    started = time.monotonic()
    ka.start(text)
    assert ka.proc is not None
    table = Path(f"/proc/{ka.proc.pid}/net/ip_vs")     # keepalived's namespace

    def complete() -> bool:
        ka.check_alive()
        return table_size(table.read_text()) == (n_vs, n_vs * N_RS)
    netlab.wait_for(complete, timeout=timeout, interval=0.1)
    return time.monotonic() - started


def measure(quick: bool = False) -> dict[str, Any]:
    """Both figures; raises when something does not work (the runner nulls them)."""
    reason = missing()
    if reason:
        raise RuntimeError(reason)
    n_vs, delay, window = (50, 5, 6.0) if quick else (1000, 5, 30.0)
    topo = Topology(n_rs=N_RS, prefix="k-", rs_routes=[netlab.LADDR_NET4])
    with topo, tempfile.TemporaryDirectory(prefix="ka-bench-") as tmp:
        work = Path(tmp)
        topo.ip_batch(topo.lb, [f"addr add {LADDR}/32 dev vip0"])
        acceptors = [Acceptor(topo, topo.rs(r)) for r in range(1, N_RS + 1)]
        try:
            restore_s = restore_time(topo, n_vs, work)
            ka = Keepalived(topo.lb, work, name="bench")
            try:
                load_s = load_time(ka, n_vs, config(n_vs, delay), timeout=3600)
                laddr_lines = topo.sh(topo.lb, f"{IPVSADM_PY} -G -n").stdout.count(LADDR)
                if laddr_lines != n_vs:
                    raise RuntimeError(f"{laddr_lines} services have the local address, "
                                       f"not {n_vs}")
                checker = int(ka.pids[1].read_text())
                time.sleep(delay * 2)                  # the checkers spread over the loop
                cpu0, tcp0, t0 = cpu_seconds(checker), tcp_counters(topo), time.monotonic()
                time.sleep(window)
                cpu1, tcp1, t1 = cpu_seconds(checker), tcp_counters(topo), time.monotonic()
                intact = table_size(ka.proc_ip_vs()) == (n_vs, n_vs * N_RS)
            finally:
                ka.stop(timeout=1800)
        finally:
            for acceptor in acceptors:
                acceptor.close()
    checks_per_s = (tcp1["PassiveOpens"] - tcp0["PassiveOpens"]) / (t1 - t0)
    cpu = cpu1 - cpu0
    return {
        "keepalived_load_vs_restore_ratio": load_s / restore_s,
        "keepalived_check_cpu_percent": 100 * cpu / (t1 - t0),
        "context": {"virtual_servers": n_vs, "real_servers_each": N_RS,
                    "keepalived_load_s": round(load_s, 2),
                    "ipvsadm_py_restore_s": round(restore_s, 2),
                    "tcp_checks": n_vs * N_RS, "delay_loop_s": delay,
                    "checks_expected_per_s": n_vs * N_RS / delay,
                    "checks_received_per_s": round(checks_per_s, 1),
                    "checker_cpu_ms_per_check": round(1000 * cpu / max(1.0, checks_per_s
                                                                       * (t1 - t0)), 3),
                    "accept_queue_overflows": tcp1["ListenOverflows"]
                    - tcp0["ListenOverflows"],
                    "all_real_servers_still_in": intact,
                    "cpu_window_s": round(t1 - t0, 1)},
    }


if __name__ == "__main__":
    print(measure(quick="--quick" in sys.argv))
