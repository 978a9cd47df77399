"""Our IPVS build in a booted kernel: it is ours, and stock tools drive it.

Topology: tests/netlab.py (client -> lb -> rs1, rs2).  Stock ``ipvsadm``
configures each upstream forwarding method; real TCP and UDP traffic goes
client -> VIP -> real server and back, over IPv4 and IPv6.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tools import netlab, whoami
from tools.netlab import Topology
from tools.kbuild import ROOT

pytestmark = pytest.mark.kernel

PORT = 8080
METHODS = {"nat": ("-m", "Masq"), "dr": ("-g", "Route"), "tun": ("-i", "Tunnel")}


def built_modules(kver: str) -> list[Path]:
    return sorted((ROOT / "build" / kver / "modules").glob("*.ko"))


def test_loaded_modules_are_our_build(kver):
    modules = built_modules(kver)
    assert {m.stem for m in modules} >= {"ip_vs", "ip_vs_rr", "ip_vs_wlc", "toa"}
    for ko in modules:
        name = ko.stem
        assert Path("/sys/module", name).is_dir(), f"{name} is not loaded"
        # Out-of-tree (O) and unsigned (E): the stock modules carry neither.
        taint = Path("/sys/module", name, "taint").read_text()
        assert "O" in taint, f"{name} taint {taint!r}: not our build"
        path = subprocess.run(["modinfo", "-n", name], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert path.endswith(f"updates/lvs-toolkit/{name}.ko")
        tag = subprocess.run(["modinfo", "-F", "lvs_toolkit", name],
                             capture_output=True, text=True).stdout.strip()
        if name in ("ip_vs", "toa"):
            assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name} lvs_toolkit tag {tag!r}"


def test_load_message_says_fnat_capable():
    log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    assert re.search(r"IPVS: ipvs loaded \(FNAT-capable, lvs-toolkit \d", log)


def test_every_scheduler_registers(topo, kver):
    """Each scheduler module we built accepts a service through stock ipvsadm."""
    schedulers = sorted(ko.stem.removeprefix("ip_vs_") for ko in built_modules(kver)
                        if ko.stem.startswith("ip_vs_")
                        and ko.stem not in ("ip_vs_ftp", "ip_vs_pe_sip"))
    assert "rr" in schedulers and "mh" in schedulers
    for port, sched in enumerate(schedulers, start=1000):
        topo.ipvsadm(f"-A -t {netlab.VIP4}:{port} -s {sched}")
    listing = topo.ipvsadm("-Ln").stdout
    for sched in schedulers:
        assert re.search(rf"^TCP\s+\S+\s+{sched}\b", listing, re.M), sched
    topo.ipvsadm("-C")


def _serve(topo, proto: str, family: int, addr: str | None) -> list[whoami._Server]:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    cls = whoami.TcpWhoami if proto == "tcp" else whoami.UdpWhoami
    return [cls(whoami.listen(topo.inside, name, family, kind, PORT, addr), name)
            for name in topo.servers]


def _service_stats(topo, conns: int) -> list[str]:
    """The service row of ``ipvsadm -Ln --stats``, once the kernel has
    folded its per-CPU counters into it (the estimator does so every 2 s,
    possibly for some CPUs before others)."""
    deadline = time.monotonic() + 30
    while True:
        row = topo.ipvsadm("-Ln --stats").stdout.splitlines()[3].split()
        if int(row[2]) >= conns or time.monotonic() > deadline:
            return row
        time.sleep(0.5)


def _ask(topo, proto: str, family: int) -> tuple[str, str]:
    """One new connection (or UDP flow) from the client to the VIP."""
    addr = netlab.vip(family)
    if proto == "tcp":
        with netlab.connect(topo, topo.client, addr, PORT) as sock:
            name, peer, _ = whoami.whoami_tcp(sock)
        return name, peer
    with netlab.connect(topo, topo.client, addr, PORT, kind=socket.SOCK_DGRAM) as sock:
        sock.send(b"ping")
        name, peer, _, _, payload = sock.recv(4096).decode().split(" ", 4)
        assert payload == "ping"
        return name, peer


@pytest.fixture(scope="module", params=list(METHODS))
def method_topo(request):
    """One topology per forwarding method, shared by its four protocol and
    family cases (a namespace set-up costs seconds under emulation).  Its
    namespaces have names of their own (``nat-client``, ...): the module's
    other tests build theirs while it lives."""
    with Topology(n_rs=2, prefix=f"{request.param}-") as topology:
        yield request.param, topology


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_stock_ipvsadm_forwarding(method_topo, proto, family):
    method, topo = method_topo
    flag, shown = METHODS[method]
    if method == "dr":
        topo.rs_for_dr(family)
    elif method == "tun":
        topo.rs_for_tunnel(family)
    if method != "nat":
        # DR/TUNNEL replies leave the servers with the VIP as source and
        # are routed back through the balancer, which owns the VIP.
        topo.sysctl(topo.lb, net__ipv4__conf__all__accept_local=1,
                    net__ipv4__conf__br0__accept_local=1)
    # A UDP server answers from the address the datagram came to only if
    # bound to it: with DR/TUNNEL that is the VIP, which the server owns.
    bind = netlab.vip(family) if method != "nat" and proto == "udp" else None
    running = _serve(topo, proto, family, bind)
    try:
        svc = f"-{proto[0]} {netlab.hostport(netlab.vip(family), PORT)}"
        topo.ipvsadm(f"-A {svc} -s rr")
        for index in (1, 2):
            rip = netlab.hostport(netlab.rs_addr(index, family), PORT)
            topo.ipvsadm(f"-a {svc} -r {rip} {flag} -w 1")
        answers = [_ask(topo, proto, family) for _ in range(4)]
        # Round robin over both servers, each seeing the real client address.
        assert sorted(name for name, _ in answers) == sorted(topo.servers * 2)
        client = netlab.client_addr(family)
        assert all(peer.removeprefix("::ffff:") == client for _, peer in answers)
        stats = _service_stats(topo, 4)
        assert int(stats[2]) == 4 and int(stats[3]) >= 4, stats
        rules = topo.ipvsadm("-Ln").stdout
        assert rules.count(f" {shown} ") == 2, rules
        # sessions of this case only: the topology's earlier cases
        # (the other family) left theirs to expire
        conns = topo.ipvsadm("-Lnc").stdout
        assert len([line for line in conns.splitlines()
                    if line.startswith(proto.upper())
                    and ("[" in line) == (family == 6)]) == 4, conns
    finally:
        topo.ipvsadm("-C", check=False)
        for server in running:
            server.close()


@pytest.mark.parametrize("family", [4, 6])
def test_expired_nat_session_resets_both_ends(topo, family):
    """conn_expire_tcp_rst also covers NAT: an idle established NAT session
    that times out is reset towards the client and the real server."""
    running = _serve(topo, "tcp", family, None)
    svc = f"-t {netlab.hostport(netlab.vip(family), PORT)}"
    try:
        topo.ipvsadm(f"-A {svc} -s rr")
        topo.ipvsadm(f"-a {svc} -r {netlab.hostport(netlab.rs_addr(1, family), PORT)} -m")
        topo.ipvsadm("--set 3 3 3")
        before = topo.ext_stats()["conn_expire_tcp_rst"]
        sock = netlab.connect(topo, topo.client, netlab.vip(family), PORT)
        assert whoami.whoami_tcp(sock)[0] == "rs1"
        sock.settimeout(120)
        with pytest.raises(ConnectionResetError):
            while sock.recv(1):
                pass
        sock.close()
        assert topo.ext_stats()["conn_expire_tcp_rst"] > before
        netlab.wait_for(lambda: not topo.sh(
            "rs1", f"ss -tnH state established '( sport = :{PORT} )'").stdout.strip())
    finally:
        topo.ipvsadm("--set 900 120 300")
        topo.ipvsadm("-C", check=False)
        for server in running:
            server.close()


