"""The --json documents (ipvsadm_py.views): one envelope for every listing,
the fields docs/ipvsadm-py.md promises, and work in proportion to size."""

from __future__ import annotations

import io
import json
import sys

import pytest
from netaddr import IPAddress

from ipvsadm_py import model, procfs, views
from ipvsadm_py.cli import check, parse, run
from ipvsadm_py.model import Daemon, Dest, Forward, LocalAddress, Service, Timeouts


def _svc(addr: str, port: int = 80) -> Service:
    a = IPAddress(addr)
    return Service(addr=a, port=port, af=model.af_of(a.version))


def test_json_schema_fields():
    svc = _svc("10.0.0.1")
    dest = Dest(addr=IPAddress("10.0.2.11"), port=80, forward=Forward.MASQ)
    doc = views.services_document(model.Info(0x010201, 4096), [(svc, [dest])])
    assert doc["schema"] == 1 and doc["ipvs"] == {"version": "1.2.1", "conn_tab_size": 4096}
    (entry,) = doc["services"]
    assert entry["protocol"] == "tcp" and entry["address"] == "10.0.0.1"
    assert entry["dests"][0]["forward"] == "masq"
    assert set(entry["stats"]) == {"conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps",
                                   "inpps", "outpps", "inbps", "outbps"}


def test_service_fields_and_the_kernels_flag_word():
    svc = Service(fwmark=7, protocol=0, af=model.AF_INET6, scheduler="sh", persistent=True,
                  timeout=60, netmask=64, onepacket=True, hashed=True,
                  sched_flags=frozenset({model.SchedFlag.FLAG_2}))
    entry = views.service_dict(svc)
    assert entry == {"family": 6, "fwmark": 7, "scheduler": "sh", "sched_flags": ["sh-port"],
                     "persistent": 60, "netmask": "64", "pe": None, "ops": True,
                     "synproxy": False, "flags": 0x1 | 0x2 | 0x4 | 0x10}


def test_tunnel_dest_fields():
    dest = Dest(addr=IPAddress("10.0.2.12"), port=80, forward=Forward.TUNNEL,
                tun_type=model.TunnelType.GUE, tun_port=6080, tun_csum=model.TunnelCsum.CSUM)
    assert views.dest_dict(dest)["tunnel"] == {"type": "gue", "port": 6080, "csum": "csum"}


# ------------------------------------------------------------------ one envelope
CONN_PROC = """Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A000063 C350 0A000001 0050 0A00020B 1F90 ESTABLISHED    899
UDP 0A000063 C351 0A000001 0035 0A00020B 0035 UDP            299 sip abc
"""
EXT_STATS = """                                            CPU0            CPU1           TOTAL
fullnat_add_toa_ok                                 3               4               7
synproxy_syn_cnt                                   0               2               2
"""


def test_every_listing_has_the_envelope():
    la = LocalAddress(IPAddress("10.0.3.1"), 2, 7)
    docs = {
        "services": views.services_document(None, [(_svc("10.0.0.1"), [])]),
        "laddrs": views.laddrs_document([(_svc("10.0.0.1"), [la])]),
        "timeouts": views.timeouts_document(Timeouts(900, 120, 300)),
        "daemons": views.daemons_document([Daemon("master", "eth0", 3)]),
        "connections": views.connections_document(procfs.parse_connections(CONN_PROC)),
        "ext_stats": views.ext_stats_document(procfs.parse_ext_stats(EXT_STATS)),
    }
    for kind, doc in docs.items():
        assert list(doc) == ["schema", kind], kind
        assert doc["schema"] == views.SCHEMA
        json.loads(views.dumps(doc))
    assert docs["timeouts"]["timeouts"] == {"tcp": 900, "tcp_fin": 120, "udp": 300}
    assert docs["daemons"]["daemons"][0]["state"] == "master"
    assert docs["laddrs"]["laddrs"][0]["laddrs"] == [
        {"address": "10.0.3.1", "port_conflicts": 2, "conns": 7}]
    assert docs["ext_stats"]["ext_stats"] == {"fullnat_add_toa_ok": 7, "synproxy_syn_cnt": 2}
    first, second = docs["connections"]["connections"]
    assert (first["protocol"], first["client"], first["client_port"], first["virtual_port"],
            first["dest"], first["state"], first["expires"], first["pe_name"]) == \
        ("tcp", "10.0.0.99", 50000, 80, "10.0.2.11", "ESTABLISHED", 899, None)
    assert (second["pe_name"], second["pe_data"]) == ("sip", "abc")


class _Table:
    """Stands in for IPVS in a Session: the views the command lists."""

    def timeouts(self) -> Timeouts:
        return Timeouts(900, 120, 300)

    def daemons(self) -> list[Daemon]:
        return [Daemon("backup", "d0", 4)]

    def close(self) -> None:
        pass


@pytest.mark.parametrize("line,kind", [("-L --timeout --json", "timeouts"),
                                       ("-L --daemon --json", "daemons")])
def test_the_command_prints_the_envelope(line, kind):
    out, err = io.StringIO(), io.StringIO()
    cmd = parse(line.split())
    check(cmd)
    assert run.execute(run.Session(out, err, ipvs=_Table()), cmd) == 0
    doc = json.loads(out.getvalue())
    assert list(doc) == ["schema", kind] and doc["schema"] == 1


# ------------------------------------------------------------------ linear
class _TooMuchWork(Exception):
    pass


def _calls(work, limit: int) -> int:
    """Python and C function calls made by ``work()``; stops it (raising
    _TooMuchWork) once they pass ``limit``."""
    count = 0

    def profile(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1
            if count > limit:
                raise _TooMuchWork(count)

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return count


def _table(n: int):
    """n services (addresses close together: ipvsadm's order is a plain
    sort then), each with a real server and a local address."""
    table, laddrs = [], {}
    for i in range(n):
        svc = Service(addr=bytes([10, 1 + i // 65536, (i // 256) % 256, i % 256]), port=80)
        table.append((svc, [Dest(addr=bytes([172, 16, i // 256 % 256, i % 256]), port=8080,
                                 forward=Forward.MASQ)]))
        laddrs[svc.key] = [LocalAddress(bytes([10, 200, 0, 1]))]
    return table, laddrs


def test_json_listing_work_grows_in_proportion_to_services():
    """The document of 10,000 services takes at most 1.2 times the calls per
    service that 100 services take (a lookup rebuilt per service would take
    100 times as many)."""
    small, small_laddrs = _table(100)
    per_service = _calls(lambda: views.services_document(None, small, small_laddrs),
                         10 ** 6) / 100
    big, big_laddrs = _table(10_000)
    limit = int(per_service * 10_000 * 1.2)
    calls = _calls(lambda: views.services_document(None, big, big_laddrs), limit)
    assert calls <= limit
