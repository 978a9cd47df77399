"""Health checks of FULLNAT real servers, as for NAT ones.

::

    client -------- lb (keepalived: FNAT service, 2 real servers) -------- rs1 rs2
    new connections  checker: TCP_CHECK | HTTP_GET | SSL_GET | MISC_CHECK   listener of
    and one kept                                                            rs1 stopped,
    open to rs2                                                             then started

rs1's listener stops: rs1 leaves the service (or gets weight 0 with
inhibit_on_failure); the time from the stop to its removal is measured
(delay_loop 1, connect_timeout 3, retry 0: one failed check is enough;
/proc/net/ip_vs polled every 50 ms); every new
connection afterwards reaches rs2; the connection kept open to rs2 goes on;
rs1's listener starts again and rs1 comes back.
"""

from __future__ import annotations

import socket
import time

import pytest

from tools import netlab, whoami
from tools.keepalived_lab import (dests, http_get, proc_key, proc_weights, record,
                                  self_signed_tls, wait_table)
from tests.kernel.keepalived_support import (KA_NS, connect_to, explained,  # noqa: F401
                                             fnat_topo, keepalived, servers)

pytestmark = pytest.mark.kernel

PORT = 80
# A stopped listener refuses at once, so the timeouts only bound a slow
# success: generous ones keep a loaded emulator from failing rs2 by mistake.
TIMING = "        connect_timeout 3\n        retry 0\n"


def checker(kind: str, index: int) -> str:
    addr = netlab.rs_addr(index)
    if kind == "TCP_CHECK":
        return f"        TCP_CHECK {{\n{TIMING}        }}\n"
    if kind in ("HTTP_GET", "SSL_GET"):
        return (f"        {kind} {{\n            url {{\n                path /\n"
                f"                status_code 200\n            }}\n{TIMING}        }}\n")
    return (f"        MISC_CHECK {{\n            misc_path \"/bin/nc -z -w 1 {addr} {PORT}\"\n"
            f"            misc_timeout 10\n            retry 0\n"
            f"        }}\n")


def config(kind: str, inhibit: bool) -> str:
    rs = "".join(
        f"    real_server {netlab.rs_addr(i)} {PORT} {{\n        weight 1\n"
        + ("        inhibit_on_failure\n" if inhibit else "")
        + checker(kind, i) + "    }\n" for i in (1, 2))
    return (f"virtual_server {netlab.VIP4} {PORT} {{\n    delay_loop 1\n    lb_algo rr\n"
            f"    lb_kind FNAT\n    protocol TCP\n    local_address {{\n        10.0.3.1\n"
            f"    }}\n{rs}}}\n")


def weight_now(ka, index: int) -> int | None:
    """rs1/rs2's weight in the kernel now (None: not in the service)."""
    weights = proc_weights(ka.proc_ip_vs(), "tcp", netlab.VIP4, PORT)
    return weights.get(proc_key(netlab.rs_addr(index), PORT))


def rs_state(table: dict, index: int) -> dict | None:
    svc = table.get(f"tcp {netlab.VIP4}:{PORT}", {"dests": []})
    return dests(svc).get(f"{netlab.rs_addr(index)}:{PORT}")


def in_service(table: dict, index: int) -> bool:
    state = rs_state(table, index)
    return state is not None and state["weight"] > 0


def ask(topo, tls: bool) -> str:
    return http_get(topo, topo.client, netlab.VIP4, PORT, tls=tls)


@pytest.mark.parametrize("kind, inhibit", [
    ("TCP_CHECK", False), ("HTTP_GET", False), ("SSL_GET", False), ("MISC_CHECK", False),
    ("TCP_CHECK", True)])
def test_dead_server_leaves_and_returns(fnat_topo, keepalived, tmp_path, kver, kind, inhibit):
    topo = fnat_topo
    tls = self_signed_tls(tmp_path) if kind == "SSL_GET" else None
    rs1, rs2 = servers(topo, 4, PORT, 2, tls=tls)
    keepalived.start(config(kind, inhibit))
    wait_table(KA_NS, lambda t: in_service(t, 1) and in_service(t, 2))

    kept = None if tls else connect_to(topo, netlab.VIP4, PORT, "rs2")
    try:
        with explained(keepalived):
            rs1.stop()
            stopped = time.monotonic()
            netlab.wait_for(lambda: not weight_now(keepalived, 1), timeout=120, interval=0.05)
            gone = time.monotonic() - stopped
            table = wait_table(KA_NS, lambda t: not in_service(t, 1))
            if inhibit:
                assert rs_state(table, 1)["weight"] == 0
            else:
                assert rs_state(table, 1) is None
            assert in_service(table, 2)
            answers = [ask(topo, tls is not None) for _ in range(8)]
            assert answers == ["rs2"] * 8, answers
            if kept is not None:     # the session of the healthy server goes on
                assert whoami.echo_stream(kept, 256 * 1024)

            rs1.start()
            started = time.monotonic()
            netlab.wait_for(lambda: weight_now(keepalived, 1), timeout=120, interval=0.05)
            back = time.monotonic() - started
            wait_table(KA_NS, lambda t: in_service(t, 1))
            assert "rs1" in {ask(topo, tls is not None) for _ in range(6)}
    finally:
        if kept is not None:
            kept.close()
    record(kver, f"health {kind}{' inhibit' if inhibit else ''}",
           {"removed_after_s": round(gone, 2), "back_after_s": round(back, 2),
            "delay_loop_s": 1, "connect_timeout_s": 3, "retry": 0})
