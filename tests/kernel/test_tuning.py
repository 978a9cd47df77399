"""lvs-tune on a real kernel: a multi-queue virtio NIC, veth pairs and a bond.

::

    guest (2 CPUs)
    +---------------------------------------------------------------+
    |  NIC  virtio-net-pci, 4 queue pairs (2 enabled: one per CPU),   |
    |       MAC 52:54:00:4c:56:53, IRQs virtioN-{input,output}.Q     |
    |       -> host tap lvsmqPID, down: nothing leaves the host      |
    |  tv0 <--veth--> tv1    one queue: RPS                          |
    |  tm0 <--veth--> tm1    two queues: XPS, no RPS                 |
    |  tb0   bond, no slaves: LRO switchable                         |
    +---------------------------------------------------------------+

Everything stays down and carries no traffic.  Each test starts from a
known "untuned" state (IRQs and XPS on every CPU, RPS off, GRO on), checks
values by reading /proc and /sys and running ``ethtool -k`` itself, and
puts the guest back as it found it.  The NIC is added by tests/guest_plugin.py
(tools/guest_nic.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from lvs_tools.tuning import cpumask
from lvs_tools.tuning.api import Tuner
from lvs_tools.tuning.apply import ApplyError
from lvs_tools.tuning.backends import EthtoolFeatures
from lvs_tools.tuning.facts import NicFacts
from lvs_tools.tuning.profile import parse_profile
from tools import guest_nic

pytestmark = pytest.mark.kernel

STATE = "/tmp/lvs-tune-test/state.json"
VETHS = {"tv0": ("tv1", 1), "tm0": ("tm1", 2)}
BOND = "tb0"
LONG_NAMES = {"generic-receive-offload": "rx-gro", "large-receive-offload": "rx-lro"}


def sh(cmd: str) -> str:
    res = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    assert res.returncode == 0, f"{cmd}: {res.stderr}"
    return res.stdout


def ethtool_k(ifname: str) -> dict[str, tuple[bool, bool]]:
    """``ethtool -k`` as {feature: (on, fixed)}, with the short feature names."""
    found = {}
    for line in sh(f"ethtool -k {ifname}").splitlines()[1:]:
        name, _, value = line.strip().partition(": ")
        if value:
            found[LONG_NAMES.get(name, name)] = (value.startswith("on"), "[fixed]" in value)
    return found


def multiqueue_nic() -> str:
    for path in Path("/sys/class/net").iterdir():     # bonding_masters is a file
        if path.is_dir() and (path / "address").read_text().strip() == guest_nic.MAC:
            return path.name
    pytest.fail(f"no multi-queue virtio NIC (MAC {guest_nic.MAC}) in the guest: "
                "tests/guest_plugin.py adds one when the host can create a multi-queue "
                "tap device (root, /dev/net/tun); see the pytest output on the host")


def read(path: str) -> str:
    return Path(path).read_text().strip()


def write(path: str, value: str) -> None:
    Path(path).write_text(value + "\n")


class Lab:
    """The devices of the drawing and the values the tests touch."""

    def __init__(self) -> None:
        self.nic = multiqueue_nic()
        self.names = [self.nic, *VETHS, BOND]
        self.possible = len(cpumask.parse_cpulist(read("/sys/devices/system/cpu/possible")))
        self.online = cpumask.parse_cpulist(read("/sys/devices/system/cpu/online"))
        self.all = cpumask.format_mask(self.online, self.possible)
        self.none = cpumask.format_mask((), self.possible)

    def facts(self, name: str) -> NicFacts:
        return Tuner.open(profile=parse_profile({}, "facts")).facts().nics[name]

    def files(self) -> list[str]:
        """Every file a test may change."""
        paths = ["/proc/sys/net/core/netdev_max_backlog",
                 "/proc/sys/net/core/rps_sock_flow_entries"]
        for name in self.names:
            nic = self.facts(name)
            paths += [irq.affinity.path for irq in nic.queue_irqs]
            paths += [q.rps_cpus.path for q in nic.rx] + [q.rps_flow_cnt.path for q in nic.rx]
            paths += [q.xps_cpus.path for q in nic.tx if len(nic.tx) > 1]
        return paths

    def snapshot(self) -> dict[str, object]:
        values: dict[str, object] = {path: read(path) for path in self.files()}
        for name in self.names:
            values[name] = {k: v for k, v in ethtool_k(name).items()
                            if k in ("rx-gro", "rx-lro", "rx-gro-hw")}
        return values

    def restore(self, values: dict[str, object]) -> None:
        features = EthtoolFeatures()
        for key, value in values.items():
            if key.startswith("/"):
                write(key, str(value))
            else:
                for feature, (on, fixed) in dict(value).items():
                    if not fixed:
                        features.set(key, feature, on)

    def untune(self) -> None:
        """The starting point: every queue IRQ and XPS map on every CPU, no
        RPS/RFS, GRO on, default backlog."""
        for name in self.names:
            nic = self.facts(name)
            for irq in nic.queue_irqs:
                write(irq.affinity.path, self.all)
            for q in nic.rx:
                write(q.rps_cpus.path, self.none)
                write(q.rps_flow_cnt.path, "0")
            for q in nic.tx if len(nic.tx) > 1 else ():
                write(q.xps_cpus.path, self.all)
            EthtoolFeatures().set(name, "rx-gro", True)
        write("/proc/sys/net/core/netdev_max_backlog", "1000")
        write("/proc/sys/net/core/rps_sock_flow_entries", "0")


@pytest.fixture
def lab() -> Iterator[Lab]:
    Path(STATE).unlink(missing_ok=True)
    try:
        for veth, (peer, queues) in VETHS.items():
            sh(f"ip link add {veth} numtxqueues {queues} numrxqueues {queues} type veth "
               f"peer name {peer} numtxqueues {queues} numrxqueues {queues}")
        sh("modprobe bonding max_bonds=0")
        sh(f"ip link add {BOND} type bond")
        lab = Lab()
        original = lab.snapshot()
        try:
            lab.untune()
            yield lab
        finally:
            lab.restore(original)
    finally:
        for name in [*VETHS, BOND]:
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        Path(STATE).unlink(missing_ok=True)


def tuner(lab: Lab, **overrides) -> Tuner:
    profile = {"strategy": "per-cpu", "interfaces": lab.names, "rps": "single-queue",
               "xps": True, "rfs": {"sock_flow_entries": 4096, "flow_cnt": "auto"},
               "irqbalance": "keep", "sysctls": {"net.core.netdev_max_backlog": 262144},
               "offloads": {"gro": False, "lro": False}, **overrides}
    return Tuner.open(profile=parse_profile(profile, "guest"), state_path=STATE)


def test_reader_sees_the_multiqueue_virtio_nic(lab):
    nic = lab.facts(lab.nic)
    assert nic.driver == "virtio_net"
    assert len(nic.rx) == len(nic.tx) == len(lab.online)       # one pair per CPU enabled
    assert [(irq.queue, irq.direction) for irq in nic.queue_irqs] == \
        [(q, d) for q in range(guest_nic.QUEUES) for d in ("rx", "tx")]
    assert all(irq.name and irq.name.endswith(f"put.{irq.queue}") for irq in nic.queue_irqs)
    assert [irq.name.rsplit("-", 1)[1] for irq in nic.irqs if irq.queue is None] == ["config"]
    assert all(irq.affinity.writable and not irq.affinity.missing for irq in nic.queue_irqs)
    assert len(lab.facts("tm0").rx) == 2 and lab.facts("tm0").irqs == ()
    assert len(lab.facts("tv0").rx) == 1


def test_plan_apply_verify_revert(lab):
    before = lab.snapshot()
    t = tuner(lab)
    plan = t.plan()
    assert plan.applicable, plan.problems
    kinds = {c.kind for c in plan.changes}
    assert kinds == {"sysctl", "irq", "xps", "rps", "rps-flow", "feature"}, kinds

    t.apply(plan)

    ncpu = len(lab.online)
    for irq in lab.facts(lab.nic).queue_irqs:                 # queue q on CPU q % n
        cpu = sorted(lab.online)[irq.queue % ncpu]
        assert read(irq.affinity.path) == cpumask.format_mask({cpu}, lab.possible)
        assert read(irq.affinity_list.path) == str(cpu)
    for name in (lab.nic, "tm0"):
        base = f"/sys/class/net/{name}/queues"
        for q in range(2):
            assert read(f"{base}/tx-{q}/xps_cpus") == cpumask.format_mask({q}, lab.possible)
            assert read(f"{base}/rx-{q}/rps_cpus") == lab.none
            assert read(f"{base}/rx-{q}/rps_flow_cnt") == "2048"
    assert read("/sys/class/net/tv0/queues/rx-0/rps_cpus") == lab.all
    assert read("/sys/class/net/tv0/queues/rx-0/rps_flow_cnt") == "4096"
    assert read("/proc/sys/net/core/netdev_max_backlog") == "262144"
    assert read("/proc/sys/net/core/rps_sock_flow_entries") == "4096"
    for name in lab.names:
        assert ethtool_k(name)["rx-gro"] == (False, False), name
    assert ethtool_k(BOND)["rx-lro"] == (False, False)
    assert t.audit() == []
    assert Path(STATE).exists()

    result = t.revert()
    assert result.errors == []
    assert lab.snapshot() == before
    assert ethtool_k(BOND)["rx-lro"] == (True, False)
    assert not Path(STATE).exists()
    assert len(t.audit()) == len(plan.changes)


def test_gro_lro_toggled_through_ethtool(lab):
    """Our ethtool backend and the ethtool binary agree, both ways."""
    features = EthtoolFeatures()
    toggled = []
    for name in lab.names:
        for feature in ("rx-gro", "rx-lro", "rx-gro-hw"):
            on, fixed = ethtool_k(name)[feature]
            ours = features.get(name)[feature]
            assert (ours.enabled, not ours.changeable) == (on, fixed), (name, feature)
            if fixed:
                continue
            features.set(name, feature, not on)
            assert ethtool_k(name)[feature] == (not on, False), (name, feature)
            long = {"rx-gro": "gro", "rx-lro": "lro", "rx-gro-hw": "rx-gro-hw"}[feature]
            sh(f"ethtool -K {name} {long} {'on' if on else 'off'}")
            assert features.get(name)[feature].enabled == on, (name, feature)
            toggled.append((name, feature))
    assert {(lab.nic, "rx-gro"), ("tv0", "rx-gro"), (BOND, "rx-lro")} <= set(toggled)


def test_fixed_feature_is_a_problem(lab):
    fixed = [f for f, (_, is_fixed) in ethtool_k("tv0").items() if is_fixed
             and f == "rx-lro"]
    assert fixed == ["rx-lro"]                     # veth: LRO off [fixed]
    plan = tuner(lab, interfaces=["tv0"], offloads={"lro": True}).plan()
    assert [(p.target, "fixed by the driver" in p.message) for p in plan.problems] == \
        [("tv0:rx-lro", True)]


def test_kernel_prints_masks_as_we_format_them(lab):
    irq = lab.facts(lab.nic).queue_irqs[-1]
    rps = "/sys/class/net/tv0/queues/rx-0/rps_cpus"
    online = sorted(lab.online)
    subsets = [frozenset(online[i] for i in range(len(online)) if bits >> i & 1)
               for bits in range(1 << len(online))]
    for cpus in subsets:
        text = cpumask.format_mask(cpus, lab.possible)
        write(rps, text)
        assert read(rps) == text
        if cpus:
            write(irq.affinity.path, text)
            assert read(irq.affinity.path) == text
            assert read(irq.affinity_list.path) == cpumask.format_cpulist(cpus)


def test_failed_write_rolls_back_on_the_kernel(lab):
    """rps_flow_cnt refuses 2^33 (EINVAL) after IRQs, XPS and RPS were written."""
    before = lab.snapshot()
    t = tuner(lab, rfs={"sock_flow_entries": 4096, "flow_cnt": 1 << 33})
    plan = t.plan()
    assert plan.applicable
    bad = next(c for c in plan.changes if c.kind == "rps-flow")
    assert plan.changes.index(bad) > 5
    with pytest.raises(ApplyError, match="Invalid argument") as err:
        t.apply(plan)
    assert err.value.rollback_errors == ()
    assert len(err.value.rolled_back) == plan.changes.index(bad)
    assert lab.snapshot() == before
    assert not Path(STATE).exists()


def test_missing_and_read_only_values_refuse_apply(lab):
    before = lab.snapshot()
    t = tuner(lab, sysctls={"kernel.random.boot_id": "x", "net.ipv4.vs.no_such_knob": 1,
                            "net.core.netdev_max_backlog": 5000})
    plan = t.plan()
    problems = {p.target: p.message for p in plan.problems}
    assert problems["/proc/sys/kernel/random/boot_id"].startswith("read-only")
    assert problems["/proc/sys/net/ipv4/vs/no_such_knob"] == \
        "missing: this ip_vs has no such sysctl"
    with pytest.raises(ApplyError, match="2 problem"):
        t.apply(plan)
    assert lab.snapshot() == before
