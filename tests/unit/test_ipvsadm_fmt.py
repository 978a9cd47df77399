"""Output formatting: recorded kernel replies -> the C tool's text, byte for byte.

Fixtures (tests/fixtures/ipvsadm/c-ipvsadm-<line>.json) are recorded in a
guest by tests/record_ipvsadm.py: the raw netlink replies for a broad rule
set and C ipvsadm's output of every listing format for the same table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from netaddr import IPAddress

from ipvsadm_py import abi, codec, model, procfs, wire
from ipvsadm_py.cli import check, fmt, names, parse, reports
from ipvsadm_py.model import Forward

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ipvsadm"
HOSTS = {"10.0.0.1": "vip-one", "10.0.2.11": "rs-eleven", "2001:db8::1": "vip-six"}


def _fixtures():
    return sorted(FIXTURES.glob("c-ipvsadm-*.json"))


def _replies(hexes):
    out = []
    for chunk in hexes:
        out += list(wire.parse_stream(bytes.fromhex(chunk), "ipvsmsg"))
    return [r for r in out if r.error is None and r.type != abi.NLMSG_DONE]


def table_from(data):
    """(Info, [(Service, [Dest])]) from recorded replies."""
    info_reply = list(wire.parse_stream(bytes.fromhex(data["replies"]["info"][0]), "infomsg"))[0]
    info = codec.info_from(info_reply.attrs)
    svcs = [codec.service_from(r.attrs["service"])
            for r in _replies(data["replies"]["services"])]
    table = []
    for svc, dumps in zip(svcs, data["replies"]["dests"]):
        table.append((svc, [codec.dest_from(r.attrs["dest"], svc.af)
                            for r in _replies(dumps)]))
    return info, table


@pytest.fixture
def hosts(monkeypatch):
    """Name resolution as in the recording guest (its /etc/hosts entries)."""
    def host(af, packed):
        import socket
        text = socket.inet_ntop(af, packed)
        return HOSTS.get(text, text)
    monkeypatch.setattr(names, "host_name", host)


def _listing_cases():
    for path in _fixtures():
        data = json.loads(path.read_text())
        for args, result in data["listings"].items():
            yield pytest.param(path, args, result, id=f"{path.stem}:{args}")


@pytest.mark.parametrize("path,args,result", list(_listing_cases()))
def test_listing_matches_c_ipvsadm(hosts, path, args, result):
    data = json.loads(path.read_text())
    info, table = table_from(data)
    cmd = parse(args.split())
    check(cmd)
    given = cmd.given
    if "connection" in given:
        text = reports.connections(procfs.parse_connections(data["conn_proc"]), cmd.view)
    elif "timeout" in given:
        (reply,) = _replies(data["replies"]["config"])
        text = reports.timeouts(codec.timeouts_from(reply.attrs))
    elif "daemon" in given:
        text = reports.daemons([codec.daemon_from(r.attrs["daemon"])
                            for r in _replies(data["replies"]["daemons"])])
    elif cmd.name == "save":
        text = fmt.listing(None, table, fmt.Format(numeric=cmd.view.numeric, rule=True))
    elif "service-address" in given:
        rows = [(s, d) for s, d in table if s.key == cmd.service.key]
        text = fmt.listing(None, rows, cmd.view)
    else:
        text = fmt.listing(info, table, cmd.view)
    assert result["rc"] == 0, result["stderr"]
    assert text == result["stdout"]


def test_fixtures_cover_both_kernel_lines():
    names = {p.stem for p in _fixtures()}
    assert {"c-ipvsadm-6.1", "c-ipvsadm-6.12"} <= names


# ------------------------------------------------------------------ pieces
@pytest.mark.parametrize("value,exact,text", [
    (0, False, "        0"), (99_999_999, False, " 99999999"), (100_000_000, False, "  100000K"),
    (999_999_999, False, "  999999K"), (1_000_000_000, False, "    1000M"),
    (123_456_789_012, False, "     123G"), (100_000_000_000_000, False, "     100T"),
    (123, True, "      123"), (123_456_789_012, True, " 123456789012"),
])
def test_largenum(value, exact, text):
    assert fmt.largenum(value, exact) == text


def _svc(addr: str, port: int = 80) -> model.Service:
    a = IPAddress(addr)
    return model.Service(addr=a, port=port, af=model.af_of(a.version))


def test_extension_words():
    svc = _svc("10.0.0.1")
    svc.synproxy = True
    svc.scheduler = "rr"
    dest = model.Dest(addr=IPAddress("10.0.2.11"), port=80, forward=Forward.FULLNAT)
    listing = fmt.listing(None, [(svc, [dest])], fmt.Format(numeric=True))
    assert "TCP  10.0.0.1:80 rr synproxy\n" in listing
    assert "  -> 10.0.2.11:80                 FullNat 1      0          0         \n" in listing
    la = model.LocalAddress(IPAddress("10.0.3.1"))
    saved = fmt.listing(None, [(svc, [dest])], fmt.Format(numeric=True, rule=True),
                        {svc.key: [la]})
    assert saved == ("-A -t 10.0.0.1:80 -s rr -j enable\n"
                     "-a -t 10.0.0.1:80 -r 10.0.2.11:80 -b -w 1\n"
                     "-P -t 10.0.0.1:80 -z 10.0.3.1\n")


def test_laddr_listing_columns():
    svc = _svc("10.0.0.1")
    text = reports.laddr_listing([(svc, [model.LocalAddress(IPAddress("10.0.3.1"), 2, 7)])], True)
    assert text.splitlines() == [
        "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS",
        "10.0.0.1:80          1",
        "                              10.0.3.1             2          7"]


def test_daemon_lines():
    master = model.Daemon("master", "d0", 3, 1400, IPAddress("239.1.1.1"), 8849, 2)
    backup = model.Daemon("backup", "d0", 4, 1472, IPAddress("224.0.0.81"), 8848, 1)
    assert reports.daemons([master, backup]) == (
        "master sync daemon (mcast=d0, syncid=3, maxlen=1400, group=239.1.1.1, port=8849, "
        "ttl=2)\n"
        "backup sync daemon (mcast=d0, syncid=4, maxlen=1472, group=224.0.0.81, port=8848, "
        "ttl=1)\n")
    assert reports.daemons([model.Daemon("master", "eth0", 255)]) == \
        "master sync daemon (mcast=eth0, syncid=255)\n"
