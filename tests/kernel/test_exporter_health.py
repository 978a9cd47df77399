"""lvs-exporter --keepalived-conf where keepalived runs: the health of each
configured real server (``lvs_real_server_healthy``) follows keepalived's
checks.

::

    client -------- lb (keepalived: FNAT service, TCP_CHECK) -------- rs1 rs2
                    lvs-exporter --netns lb --keepalived-conf ka.conf  listener of rs1
                                                                       stopped, started

rs1's listener stops: keepalived's check fails and takes rs1 out of the
table (or sets weight 0 with inhibit_on_failure); the scrape shows rs1 at 0
and rs2 still at 1; rs1's listener starts again and the scrape shows 1.
"""

from __future__ import annotations

import pytest

from tests.kernel.keepalived_support import (KA_NS, explained, fnat_topo,  # noqa: F401
                                             keepalived, servers)
from tests.kernel.test_exporter import Exporter, samples
from tests.kernel.test_keepalived_health import PORT, config, in_service
from tools import netlab
from tools.keepalived_lab import wait_table

pytestmark = pytest.mark.kernel


def series(exporter: Exporter, name: str, index: int) -> float | None:
    """The value of ``name`` for rs<index> of the service in one scrape."""
    labels = (f'{{port="{PORT}",proto="tcp",rs="{netlab.rs_addr(index)}:{PORT}",'
              f'vip="{netlab.VIP4}"}}')
    return samples(exporter.scrape()).get(name + labels)


def healthy(exporter: Exporter, index: int) -> float | None:
    return series(exporter, "lvs_real_server_healthy", index)


@pytest.mark.parametrize("inhibit", [False, True])
def test_health_follows_keepalived_checks(fnat_topo, keepalived, tmp_path, inhibit):
    topo = fnat_topo
    rs1, _ = servers(topo, 4, PORT, 2)
    keepalived.start(config("TCP_CHECK", inhibit))
    wait_table(KA_NS, lambda t: in_service(t, 1) and in_service(t, 2))
    exporter = Exporter(tmp_path, "lb", KA_NS, "--keepalived-conf", str(keepalived.conf))
    try:
        with explained(keepalived):
            assert healthy(exporter, 1) == 1 and healthy(exporter, 2) == 1
            rs1.stop()
            netlab.wait_for(lambda: healthy(exporter, 1) == 0, timeout=120, interval=0.5)
            assert healthy(exporter, 2) == 1
            # the kernel's own view beside it: weight 0 kept, or the server gone
            weight = series(exporter, "lvs_real_server_weight", 1)
            assert weight == (0 if inhibit else None)
            rs1.start()
            netlab.wait_for(lambda: healthy(exporter, 1) == 1, timeout=120, interval=0.5)
            assert healthy(exporter, 2) == 1
            assert "cannot read" not in exporter.log()
    finally:
        exporter.stop()
