"""lvs-exporter: Prometheus metrics of IPVS on a balancer (services, real
servers, FULLNAT local addresses, extended counters) or of toa.ko on a real
server, read from the kernel at each scrape through the library.

A front end (docs/architecture.md): ``names`` is the table of metrics,
``collect`` the collectors, ``cli`` the command line.  docs/monitoring/
has the metrics' reference, alert rules and a Grafana dashboard.
"""

from __future__ import annotations


def main() -> int:
    """The console script (imports the exporter only when run)."""
    from ipvsadm_py.exporter.cli import main as run

    return run()
