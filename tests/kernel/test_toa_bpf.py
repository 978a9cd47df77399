"""The BPF TOA in the guest, on each kernel line: the host test
(tests/host/test_toa_bpf.py) run against the booted kernel, with toa.ko
unloaded meanwhile (the two variants are never active together).  bpffs
is mounted first where the guest has none."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from lvs_tools import toa_bpf, toa_bpf_steps
from tests.host import test_toa_bpf as on_host
from tests.kernel.test_fnat import Lab, fnat_topo  # noqa: F401 (a fixture)
from tools import netlab, whoami

pytestmark = [pytest.mark.kernel, *on_host.pytestmark]


@pytest.fixture(scope="module")
def bpf(tmp_path_factory):
    """The programs loaded, and toa.ko out of the way meanwhile (the guest
    loads it; it would answer getpeername() itself, from any peer)."""
    skip_without_bpf_loop()
    toa_bpf_steps.mount_bpffs()
    had_module = os.path.exists("/sys/module/toa")
    if had_module:
        subprocess.run(["rmmod", "toa"], check=True)
    try:
        yield from on_host.bpf.__wrapped__(tmp_path_factory)
    finally:
        if had_module:
            subprocess.run(["modprobe", "toa"], check=True)
    # detached and unpinned: the programs and maps go with their last
    # reference (after an RCU grace period), socket storage with its socket
    for _ in range(100):
        if not ours():
            break
        time.sleep(0.1)
    assert ours() == [], "programs or maps of ours outlive their pins"


def skip_without_bpf_loop() -> None:
    if not toa_bpf.has_bpf_loop():
        pytest.skip("this kernel has no bpf_loop() (5.17 or later): the BPF TOA needs it")


def ours() -> list[str]:
    """Names of the loaded BPF programs and maps of toa.bpf.c (toa_*)."""
    names = []
    for kind in ("prog", "map"):
        out = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True,
                             check=True).stdout
        names += [f"{kind} {o.get('name', '')}" for o in json.loads(out or "[]")
                  if o.get("name", "").startswith("toa_")]
    return sorted(names)


def test_the_client_is_named_and_malformed_options_are_not(bpf):
    on_host.test_the_client_is_named_and_malformed_options_are_not(bpf)


def test_toa_only_from_trusted_peers(bpf):
    on_host.test_toa_only_from_trusted_peers(bpf)


# Runs in the cgroup and the namespace: says "ready", then makes crafted
# connections, each with a client of its own, on one listener, until the file
# argv[1] exists; prints [client, accept()'s address, getpeername()] for each.
STORM = on_host.CHILD.split("peer = craft.TunPeer(tun)")[0] + r"""
peer = craft.TunPeer(tun)
srv = socket.socket(socket.AF_INET)
srv.bind(("%(RS4)s", 0)); srv.listen(64); srv.settimeout(10)
out = []
i = 0
print("ready", flush=True)
while not os.path.exists(sys.argv[1]) and i < 5000:
    client = (f"203.0.113.{i %% 250 + 1}", 10000 + i)
    conn = craft.CraftedConnection(peer, "%(LB4)s", "%(RS4)s", srv.getsockname()[1],
                                   sport=20000 + i)
    conn.handshake(craft.nop_pad(craft.toa_option(*client)))
    sock, accepted = srv.accept()
    out.append([list(client), list(accepted[:2]), list(sock.getpeername()[:2])])
    conn.reset(); sock.close()
    i += 1
srv.close(); peer.close()
print(json.dumps(out))
""" % {"RS4": on_host.RS4, "LB4": on_host.LB4}


def test_attach_detach_storm_never_names_another_client(bpf):
    """The programs come and go (detach, re-attach every ~50 ms) while
    connections with a client each arrive: every socket names its own
    client or the balancer, never another's; the counters say both
    happened.  (That nothing of ours outlives the unpinning is the
    fixture's last check.)"""
    pins, cgroup, netns = bpf
    stop = Path(f"/tmp/toa-storm-stop-{os.getpid()}")
    stop.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(on_host.ROOT / "tools"))
    shell = (f"echo $$ > {cgroup}/cgroup.procs && exec ip netns exec {netns} "
             f"{sys.executable} -c \"$0\" \"$1\"")
    child = subprocess.Popen(["sh", "-c", shell, STORM, str(stop)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # one bpftool process per half-toggle (its batch mode): under emulation
    # a process each for the three programs made the toggles too slow
    batches = {name: "\n".join(shlex.join(argv[1:]) for argv in commands(cgroup, pins))
               for name, commands in (("detach", toa_bpf.detach_commands),
                                      ("attach", toa_bpf.attach_commands))}
    toggles = 0
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
        while child.poll() is None and toggles < 20:
            for name in ("detach", "attach"):
                time.sleep(0.05)
                subprocess.run(["bpftool", "batch", "file", "-"], input=batches[name],
                               text=True, capture_output=True, check=name == "attach")
            toggles += 1
        stop.touch()
        out, err = child.communicate(timeout=120)
    finally:
        stop.touch()
        if child.poll() is None:
            child.kill()
        stop.unlink(missing_ok=True)
        toa_bpf.detach(cgroup, pins)
        toa_bpf.attach(cgroup, pins)       # as the fixture left it
    assert child.returncode == 0, err
    results = json.loads(out)
    assert toggles == 20 and len(results) > 20, (len(results), toggles)
    named = balancer = 0
    for client, accepted, peername in results:
        for got in (accepted, peername):
            if got == client:
                named += 1
            else:
                assert got[0] == on_host.LB4, (client, accepted, peername)
                balancer += 1
    # both outcomes were seen: the storm did cross attach and detach
    assert named and balancer, (named, balancer)



@pytest.fixture
def in_the_cgroup(bpf) -> Iterator[None]:
    """This test process in the programs' cgroup (the lab's servers are its
    threads, and a socket belongs to the cgroup of the process that made
    it); back where it was afterwards."""
    cgroup = bpf[1]
    root = on_host.cgroup2_root()
    here = Path("/proc/self/cgroup").read_text().split("0::", 1)[1].splitlines()[0]
    (cgroup / "cgroup.procs").write_text(str(os.getpid()))
    try:
        yield
    finally:
        (root / here.lstrip("/") / "cgroup.procs").write_text(str(os.getpid()))


@pytest.mark.parametrize("family", [4, 6], ids=["ipv4", "ipv6"])
def test_clients_through_fullnat(bpf, in_the_cgroup, fnat_topo, family):
    """End to end with the BPF variant alone (toa.ko unloaded): the FULLNAT
    balancer adds TOA, the real servers' accept() names the client's address
    and port, for 40 connections in parallel over both servers."""
    lab = Lab(fnat_topo, family, rs_count=2)
    seen: list[tuple] = []
    lock = threading.Lock()

    def one() -> None:
        with lab.connect() as sock:
            cport = sock.getsockname()[1]
            name, peer, port = whoami.whoami_tcp(sock)
        with lock:
            seen.append((name, (peer, int(port)), cport))

    try:
        before = toa_bpf.stats(bpf[0])
        threads = [threading.Thread(target=one) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        client = netlab.client_addr(family)
        assert len(seen) == 40
        assert {name for name, _, _ in seen} == {"rs1", "rs2"}
        assert [got for _, got, cport in seen if got != (client, cport)] == []
        moved = {k: v - before[k] for k, v in toa_bpf.stats(bpf[0]).items()}
        assert moved["syn_recv_sock_toa"] == 40 and moved["getname_toa_ok"] >= 40, moved
    finally:
        lab.close()
