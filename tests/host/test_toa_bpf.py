"""The BPF TOA (kernel/toa_bpf, tools/lvs_tools/toa_bpf.py) on this host's
own kernel: built with clang, loaded and pinned with bpftool, attached to a
throwaway cgroup; a server in that cgroup (and a throwaway network
namespace) takes crafted TOA connections over a TUN device
(tools/lvs_tools/toa_craft.py), and ``accept()``/``getpeername()`` must
name the client, or the balancer where the option is malformed, from an
untrusted peer or of the other family.  Root only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from lvs_tools import toa_bpf
from lvs_tools.toa_bpf_steps import cgroup2_root

ROOT = Path(__file__).resolve().parents[2]


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="BPF, cgroups and namespaces: needs root"),
    pytest.mark.skipif(shutil.which("clang") is None or
                       shutil.which("bpftool", path="/usr/sbin:/sbin:/usr/bin") is None,
                       reason="clang and bpftool (Debian packages clang, bpftool) are needed"),
    pytest.mark.skipif(cgroup2_root() is None, reason="no cgroup v2 mount"),
]

LB4, LB6 = "198.51.100.2", "2001:db8:51::2"
RS4, RS6 = "10.77.0.1", "2001:db8:77::1"

# Runs in the cgroup and the namespace: one crafted connection per case,
# prints [case, accept()'s address, getpeername(), the client recorded (with
# argv[2], the id of the map of recorded clients)] for each.
CHILD = r"""
import json, socket, subprocess, sys, time
from lvs_tools import toa_craft as craft
import os
name = f"toab{os.getpid() %% 100000}"      # the last run's device may not be gone yet
tun = craft.Tun(name)
for cmd in craft.ip_commands(name, ["%(RS4)s/32", "%(RS6)s/128"],
                             ["198.51.100.0/24", "2001:db8:51::/64"]):
    if "route" in cmd:
        cmd[cmd.index("add")] = "replace"
    done = subprocess.run(cmd, capture_output=True)    # lo's addresses stay from a last run
    if done.returncode and b"already assigned" not in done.stderr \
            and b"File exists" not in done.stderr:
        sys.exit(done.stderr.decode())
for _ in range(50):             # IPv6 on the new device: its link-local out of DAD
    if b"tentative" not in subprocess.run(["ip", "-6", "addr", "show", "dev", name],
                                          capture_output=True).stdout:
        break
    time.sleep(0.1)
peer = craft.TunPeer(tun)
out = []
for case, fam, options, on_data in json.loads(sys.argv[1]):
    rs, lb = ("%(RS4)s", "%(LB4)s") if fam == 4 else ("%(RS6)s", "%(LB6)s")
    srv = socket.socket(socket.AF_INET if fam == 4 else socket.AF_INET6)
    srv.bind((rs, 0)); srv.listen(8); srv.settimeout(10)
    conn = craft.CraftedConnection(peer, lb, rs, srv.getsockname()[1])
    opt = bytes.fromhex(options)
    if on_data:
        conn.handshake()
    else:
        conn.handshake(craft.nop_pad(opt))
    sock, accepted = srv.accept()
    if on_data:
        conn.send(b"hello", craft.nop_pad(opt)); sock.settimeout(10); sock.recv(16)
    query = None
    if len(sys.argv) > 2:      # the recorded client, as toa_bpf.client_of() reads it
        from lvs_tools import toa_bpf
        query = toa_bpf.client_of(sock, map_id=int(sys.argv[2]))
    out.append([case, list(accepted[:2]), list(sock.getpeername()[:2]),
                list(query) if query else None])
    conn.reset(); sock.close(); srv.close()
peer.close()
print(json.dumps(out))
""" % {"RS4": RS4, "RS6": RS6, "LB4": LB4, "LB6": LB6}


@pytest.fixture(scope="module")
def bpf(tmp_path_factory):
    tag = uuid.uuid4().hex[:8]
    pins = Path(f"/sys/fs/bpf/lvs-toa-test-{tag}")
    cgroup = cgroup2_root() / f"lvs-toa-test-{tag}"
    netns = f"toab-{tag}"
    obj = toa_bpf.build(tmp_path_factory.mktemp("bpf") / "toa.bpf.o")
    toa_bpf.load(obj, pins)
    cgroup.mkdir()
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        toa_bpf.attach(cgroup, pins)
        yield pins, cgroup, netns
    finally:
        toa_bpf.detach(cgroup, pins)
        cgroup.rmdir()
        toa_bpf.unload(pins)
        subprocess.run(["ip", "netns", "del", netns], check=False)
    assert not pins.exists()


def connect(bpf, cases: list, query: bool = False) -> dict[str, tuple]:
    """{case: (accept()'s address, getpeername()[, toa_bpf.client_of()])}"""
    pins, cgroup, netns = bpf
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tools"))
    shell = (f"echo $$ > {cgroup}/cgroup.procs && exec ip netns exec {netns} "
             f"{sys.executable} -c \"$0\" \"$@\"")
    args = [json.dumps(cases)] + ([str(toa_bpf.clients_map_id(pins))] if query else [])
    done = subprocess.run(["sh", "-c", shell, CHILD, *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {case: (tuple(acc), tuple(peer)) + ((tuple(q) if q else None,) if query else ())
            for case, acc, peer, q in json.loads(done.stdout)}


def toa(addr: str, port: int, kind: int = 254) -> str:
    from lvs_tools.toa_craft import toa_option
    return toa_option(addr, port, kind).hex()


def test_the_client_is_named_and_malformed_options_are_not(bpf):
    pins = bpf[0]
    before = toa_bpf.stats(pins)
    got = connect(bpf, [
        ["ack4", 4, toa("203.0.113.9", 4321), False],
        ["data4", 4, toa("203.0.113.10", 4322), True],
        ["ack6", 6, toa("2001:db8:99::9", 4323), False],
        ["v4_on_v6", 6, toa("203.0.113.11", 4324), False],
        ["v6_on_v4", 4, toa("2001:db8:99::12", 4325), False],
        ["legacy6", 6, toa("2001:db8:99::13", 4326, 253), False],
        ["legacy_v4_len", 4, toa("203.0.113.14", 4327, 253), False],
        ["twice", 4, toa("203.0.113.15", 4328) + toa("203.0.113.16", 4329), False],
    ], query=True)
    assert got["ack4"][:2] == (("203.0.113.9", 4321), ("203.0.113.9", 4321))
    assert got["data4"][1] == ("203.0.113.10", 4322)
    assert got["data4"][0][0] == LB4           # accept() came before the data
    assert got["ack6"][:2] == (("2001:db8:99::9", 4323), ("2001:db8:99::9", 4323))
    assert got["v4_on_v6"][1] == ("::ffff:203.0.113.11", 4324)
    assert got["legacy6"][1] == ("2001:db8:99::13", 4326)
    for case in ("v6_on_v4", "legacy_v4_len", "twice"):
        assert got[case][1][0] == LB4, (case, got[case])
    # the recorded client, read with the socket's descriptor: the IPv6
    # client that getpeername() of an IPv4 socket cannot show is there
    assert got["v6_on_v4"][2] == ("2001:db8:99::12", 4325)
    assert got["ack4"][2] == ("203.0.113.9", 4321)
    assert got["v4_on_v6"][2] == ("203.0.113.11", 4324)
    assert got["legacy_v4_len"][2] is None and got["twice"][2] is None
    moved = {k: v - before[k] for k, v in toa_bpf.stats(pins).items()}
    assert moved["syn_recv_sock_toa"] == 5     # ack4, ack6, v4_on_v6, v6_on_v4 (stored), legacy6
    assert moved["data_seg_toa"] == 1
    assert moved["getname_toa_family"] >= 1
    assert moved["opt_bad_len"] == 1 and moved["opt_duplicate"] == 1


def test_toa_only_from_trusted_peers(bpf):
    pins = bpf[0]
    try:
        toa_bpf.set_trusted(["192.0.2.0/24", "2001:db8:ffff::/48"], pins)
        before = toa_bpf.stats(pins)
        got = connect(bpf, [["untrusted", 4, toa("203.0.113.20", 4330), False]])
        assert got["untrusted"][1][0] == LB4
        assert toa_bpf.stats(pins)["opt_untrusted"] - before["opt_untrusted"] == 1
        toa_bpf.set_trusted(["198.51.100.0/24"], pins)
        got = connect(bpf, [["trusted", 4, toa("203.0.113.21", 4331), False]])
        assert got["trusted"][1] == ("203.0.113.21", 4331)
    finally:
        toa_bpf.set_trusted([], pins)
