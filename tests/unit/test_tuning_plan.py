"""Plans (tools/lvs_tools/tuning/plan.py) for fake hosts of 2, 16, 96 and 130 CPUs."""

from __future__ import annotations

import pytest

from lvs_tools.tuning import cpumask
from lvs_tools.tuning.backends import Host
from lvs_tools.tuning.facts import read_host
from lvs_tools.tuning.plan import Plan, make_plan, pow2_ceil, spread
from lvs_tools.tuning.profile import load_profile, parse_profile

from tests.unit.tuning_fake import FakeHost, add_virtio_nic

BARE = {"irqbalance": "keep", "offloads": {}, "sysctls": {}, "rps": "keep", "xps": False}


def plan_of(root, **profile) -> Plan:
    prof = parse_profile({**BARE, **profile}, "test")
    return make_plan(read_host(Host.open(root), prof.sysctls), prof)


def writes(plan: Plan, kind: str) -> dict[str, str]:
    return {c.target: c.new for c in plan.changes if c.kind == kind}


def irq_cpus(plan: Plan) -> dict[str, frozenset[int]]:
    return {t: cpumask.parse_mask(v) for t, v in writes(plan, "irq").items()}


@pytest.mark.parametrize("ncpus, queues", [(2, 2), (2, 4), (16, 8), (16, 16), (96, 48),
                                           (96, 96), (130, 130), (130, 64)])
def test_per_cpu_pins_queue_i_to_cpu_i(tmp_path, ncpus, queues):
    fake = FakeHost(tmp_path, ncpus)
    irqs = fake.add_nic("eth0", queues)
    plan = plan_of(tmp_path, strategy="per-cpu")
    assert plan.applicable, plan.problems
    pinned = irq_cpus(plan)
    assert len(pinned) == queues                       # the misc IRQ is left alone
    for q in range(queues):
        assert pinned[f"/proc/irq/{irqs[q]}/smp_affinity"] == {q % ncpus}
    for text in writes(plan, "irq").values():
        assert text == cpumask.format_mask(cpumask.parse_mask(text), ncpus)


def test_known_mask_text_on_130_cpus(tmp_path):
    fake = FakeHost(tmp_path, 130)
    irqs = fake.add_nic("eth0", 130, misc_irq=None)
    new = writes(plan_of(tmp_path), "irq")
    assert new[f"/proc/irq/{irqs[0]}/smp_affinity"] == "0,00000000,00000000,00000000,00000001"
    assert new[f"/proc/irq/{irqs[33]}/smp_affinity"] == "0,00000000,00000000,00000002,00000000"
    assert new[f"/proc/irq/{irqs[129]}/smp_affinity"] == "2,00000000,00000000,00000000,00000000"


def test_known_mask_text_on_96_cpus(tmp_path):
    fake = FakeHost(tmp_path, 96)
    irqs = fake.add_nic("eth0", 96, misc_irq=None)
    new = writes(plan_of(tmp_path), "irq")
    assert new[f"/proc/irq/{irqs[95]}/smp_affinity"] == "80000000,00000000,00000000"
    assert new[f"/proc/irq/{irqs[64]}/smp_affinity"] == "00000001,00000000,00000000"


def test_offline_cpus_are_skipped(tmp_path):
    fake = FakeHost(tmp_path, 16, offline={2, 5})
    irqs = fake.add_nic("eth0", 14, misc_irq=None)
    plan = plan_of(tmp_path)
    online = [c for c in range(16) if c not in (2, 5)]
    pinned = irq_cpus(plan)
    assert [min(pinned[f"/proc/irq/{i}/smp_affinity"]) for i in irqs] == online
    assert not any({2, 5} & cpus for cpus in pinned.values())


def test_profile_cpus_restrict_and_note_offline(tmp_path):
    fake = FakeHost(tmp_path, 16, offline={3})
    irqs = fake.add_nic("eth0", 4, misc_irq=None)
    plan = plan_of(tmp_path, cpus="1-4")
    assert [min(irq_cpus(plan)[f"/proc/irq/{i}/smp_affinity"]) for i in irqs] == [1, 2, 4, 1]
    assert any("CPUs 3" in n.message and "offline" in n.message for n in plan.notes)


def test_more_cpus_than_queues_xps_groups(tmp_path):
    fake = FakeHost(tmp_path, 16)
    fake.add_nic("eth0", 4, misc_irq=None)
    plan = plan_of(tmp_path, xps=True)
    xps = {t.rsplit("/", 2)[-2]: cpumask.parse_mask(v) for t, v in writes(plan, "xps").items()}
    assert xps == {f"tx-{q}": frozenset(range(q, 16, 4)) for q in range(4)}
    assert sorted(min(c) for c in irq_cpus(plan).values()) == [0, 1, 2, 3]
    assert all(len(c) == 1 for c in irq_cpus(plan).values())


def test_spread_and_wrap():
    assert spread((0, 1), 4) == {0: {0}, 1: {1}, 2: {0}, 3: {1}}
    assert spread((0, 1, 2), 2) == {0: {0, 2}, 1: {1}}
    assert spread((4,), 1) == {0: {4}}


@pytest.mark.parametrize("ncpus", [16, 96, 130])
def test_numa_local_uses_the_nics_node(tmp_path, ncpus):
    fake = FakeHost(tmp_path, ncpus, nodes=2)
    near = fake.add_nic("eth0", 8, node=1, misc_irq=None)
    fake.add_nic("eth1", 8, node=0, misc_irq=None)
    plan = plan_of(tmp_path, strategy="numa-local")
    node1 = fake.node_cpus[1]
    pinned = irq_cpus(plan)
    assert [min(pinned[f"/proc/irq/{i}/smp_affinity"]) for i in near] == node1[:8]
    node0_irqs = [t for t in pinned if t not in {f"/proc/irq/{i}/smp_affinity" for i in near}]
    assert all(pinned[t] <= set(fake.node_cpus[0]) for t in node0_irqs)


def test_numa_local_skips_offline_and_handles_unknown_node(tmp_path):
    fake = FakeHost(tmp_path, 16, nodes=2, offline={8})
    near = fake.add_nic("eth0", 2, node=1, misc_irq=None)
    fake.add_nic("eth1", 2, node=-1, misc_irq=None)
    plan = plan_of(tmp_path, strategy="numa-local")
    assert [min(irq_cpus(plan)[f"/proc/irq/{i}/smp_affinity"]) for i in near] == [9, 10]
    assert any("eth1: NUMA node unknown" in n.message for n in plan.notes)


def test_explicit_map(tmp_path):
    fake = FakeHost(tmp_path, 16, offline={7})
    irqs = fake.add_nic("eth0", 3, misc_irq=None)
    plan = plan_of(tmp_path, strategy="explicit", xps=True,
                   irq_map={"eth0": [5, "6-7", "8,10"]})
    assert plan.applicable
    pinned = irq_cpus(plan)
    assert [pinned[f"/proc/irq/{i}/smp_affinity"] for i in irqs] == [{5}, {6}, {8, 10}]
    assert any("CPUs 7 are offline" in n.message for n in plan.notes)
    assert len(writes(plan, "xps")) == 3


@pytest.mark.parametrize("irq_map, message", [
    ({"eth1": ["0"]}, "no entry for eth0"),
    ({"eth0": ["0"]}, "names 1 queues, eth0 has 2"),
    ({"eth0": ["0", "7"]}, "no online CPU"),
])
def test_explicit_map_problems(tmp_path, irq_map, message):
    fake = FakeHost(tmp_path, 8, offline={7})
    fake.add_nic("eth0", 2)
    plan = plan_of(tmp_path, strategy="explicit", irq_map=irq_map)
    assert not plan.applicable
    assert any(message in p.message for p in plan.problems), plan.problems
    assert writes(plan, "irq") == {}


def test_strategy_none_leaves_irqs(tmp_path):
    fake = FakeHost(tmp_path, 4)
    fake.add_nic("eth0", 4)
    plan = plan_of(tmp_path, strategy="none", xps=True, rps="single-queue")
    assert writes(plan, "irq") == {} and writes(plan, "xps") == {}


def test_rps_for_single_queue_nics_only(tmp_path):
    fake = FakeHost(tmp_path, 16)
    fake.add_nic("eth0", 1, misc_irq=None)
    fake.add_nic("eth1", 4)
    fake.write("sys/class/net/eth1/queues/rx-2/rps_cpus", fake.mask({1, 2}))
    plan = plan_of(tmp_path, rps="single-queue")
    rps = writes(plan, "rps")
    assert rps == {"/sys/class/net/eth0/queues/rx-0/rps_cpus": "ffff",
                   "/sys/class/net/eth1/queues/rx-2/rps_cpus": "0000"}
    assert irq_cpus(plan) and all(c == {0} for t, c in irq_cpus(plan).items()
                                  if t in {"/proc/irq/24/smp_affinity"})


def test_rps_all_and_off(tmp_path):
    fake = FakeHost(tmp_path, 4)
    fake.add_nic("eth0", 2)
    assert set(writes(plan_of(tmp_path, rps="all"), "rps").values()) == {"f"}
    assert writes(plan_of(tmp_path, rps="off"), "rps") == {}      # already off


def test_xps_only_on_multiqueue_nics(tmp_path):
    fake = FakeHost(tmp_path, 4)
    fake.add_nic("eth0", 1)
    add_virtio_nic(fake, "eth1", 2)
    plan = plan_of(tmp_path, xps=True)
    assert sorted(writes(plan, "xps")) == [f"/sys/class/net/eth1/queues/tx-{q}/xps_cpus"
                                           for q in range(2)]
    assert plan.applicable


def test_virtio_rx_and_tx_irqs_share_the_queue_cpu(tmp_path):
    fake = FakeHost(tmp_path, 2)
    irqs = add_virtio_nic(fake, "eth0", 4)
    pinned = irq_cpus(plan_of(tmp_path))
    assert [pinned[f"/proc/irq/{i}/smp_affinity"] for i in irqs[:8]] == \
        [{0}, {0}, {1}, {1}, {0}, {0}, {1}, {1}]
    assert f"/proc/irq/{irqs[8]}/smp_affinity" not in pinned        # config IRQ


def test_missing_and_read_only_files_are_problems(tmp_path):
    fake = FakeHost(tmp_path, 4)
    irqs = fake.add_nic("eth0", 4, misc_irq=None)
    fake.remove(f"proc/irq/{irqs[1]}")
    fake.readonly(f"proc/irq/{irqs[2]}/smp_affinity")
    plan = plan_of(tmp_path)
    assert not plan.applicable
    problems = {p.target: p.message for p in plan.problems}
    assert problems[f"/proc/irq/{irqs[1]}/smp_affinity"].startswith("missing")
    assert problems[f"/proc/irq/{irqs[2]}/smp_affinity"].startswith("read-only")
    assert len(writes(plan, "irq")) == 2


def test_read_only_value_already_right_is_fine(tmp_path):
    fake = FakeHost(tmp_path, 4)
    irqs = fake.add_nic("eth0", 1, misc_irq=None)
    fake.write(f"proc/irq/{irqs[0]}/smp_affinity", "1", mode=0o444)
    plan = plan_of(tmp_path)
    assert plan.applicable and plan.unchanged == 1


def test_nic_without_queue_irqs_is_noted(tmp_path):
    fake = FakeHost(tmp_path, 4)
    fake.add_nic("eth0", 2, irq_names=("weird{q}",), misc_irq="other")
    plan = plan_of(tmp_path)
    assert plan.applicable and writes(plan, "irq") == {}
    assert any("no queue IRQs" in n.message for n in plan.notes)


def test_offloads(tmp_path):
    fake = FakeHost(tmp_path, 2)
    fake.add_nic("eth0", 1, features={"rx-gro": [True, True], "rx-lro": [True, False],
                                       "rx-gro-hw": [True, True]})
    fake.add_nic("eth1", 1, features={"rx-gro": [False, True]})
    plan = plan_of(tmp_path, offloads={"gro": False, "lro": False, "gro_hw": False})
    assert writes(plan, "feature") == {"eth0:rx-gro": "off", "eth0:rx-gro-hw": "off"}
    assert [p.target for p in plan.problems] == ["eth0:rx-lro"]
    assert "fixed by the driver" in plan.problems[0].message
    assert any("eth1 has no feature rx-lro" in n.message for n in plan.notes)


def test_irqbalance(tmp_path):
    fake = FakeHost(tmp_path, 2)
    fake.irqbalance(enabled=True, active=True)
    fake.add_nic("eth0", 2)
    plan = plan_of(tmp_path, irqbalance="off")
    assert [(c.kind, c.old, c.new) for c in plan.changes[:2]] == [
        ("service-active", "active", "inactive"), ("service-enabled", "enabled", "disabled")]
    fake.irqbalance(enabled=False, active=False)
    assert not [c for c in plan_of(tmp_path, irqbalance="off").changes
                if c.kind.startswith("service")]
    assert not [c for c in plan_of(tmp_path, irqbalance="keep").changes
                if c.kind.startswith("service")]


def test_sysctls(tmp_path):
    fake = FakeHost(tmp_path, 2)
    fake.write("proc/sys/net/core/somaxconn", "4096", mode=0o444)
    plan = plan_of(tmp_path, sysctls={"net.core.netdev_max_backlog": 262144,
                                      "net.core.dev_weight": 64,
                                      "net.ipv4.vs.conn_reuse_mode": 0,
                                      "net.core.somaxconn": 1024})
    assert writes(plan, "sysctl") == {"/proc/sys/net/core/netdev_max_backlog": "262144"}
    problems = {p.target: p.message for p in plan.problems}
    assert "ip_vs is not loaded" in problems["/proc/sys/net/ipv4/vs/conn_reuse_mode"]
    assert problems["/proc/sys/net/core/somaxconn"].startswith("read-only")
    fake.ipvs()
    plan = plan_of(tmp_path, sysctls={"net.ipv4.vs.conn_reuse_mode": 0})
    assert "this ip_vs has no such sysctl" in plan.problems[0].message


def test_rfs_rounds_like_the_kernel(tmp_path):
    fake = FakeHost(tmp_path, 4)
    fake.add_nic("eth0", 3)
    plan = plan_of(tmp_path, rfs={"sock_flow_entries": 30000, "flow_cnt": "auto"})
    assert writes(plan, "sysctl") == {"/proc/sys/net/core/rps_sock_flow_entries": "32768"}
    assert set(writes(plan, "rps-flow").values()) == {"16384"}     # 30000 / 3 -> 2^14
    assert pow2_ceil(0) == 0 and pow2_ceil(1) == 1 and pow2_ceil(4096) == 4096


def test_conn_tab_bits(tmp_path):
    fake = FakeHost(tmp_path, 2)
    plan = plan_of(tmp_path, ipvs={"conn_tab_bits": 20})
    assert [n.deviation for n in plan.notes] == [True]
    assert "not loaded and nothing sets it" in plan.notes[0].message
    fake.write("etc/modprobe.d/ipvs.conf", "options ip_vs conn_tab_bits=20")
    assert plan_of(tmp_path, ipvs={"conn_tab_bits": 20}).notes == []
    fake.ipvs(conn_tab_bits=12)
    note = plan_of(tmp_path, ipvs={"conn_tab_bits": 20}).notes[0]
    assert note.deviation and "is 12 (4096 buckets)" in note.message
    assert "options ip_vs conn_tab_bits=20" in note.message
    fake.ipvs(conn_tab_bits=20)
    assert plan_of(tmp_path, ipvs={"conn_tab_bits": 20}).notes == []


def test_interfaces_auto_skips_virtual_and_named_must_exist(tmp_path):
    fake = FakeHost(tmp_path, 2)
    fake.add_nic("eth0", 1)
    fake.add_veth("veth0")
    auto = plan_of(tmp_path, rps="single-queue")
    assert list(writes(auto, "rps")) == ["/sys/class/net/eth0/queues/rx-0/rps_cpus"]
    named = plan_of(tmp_path, rps="single-queue", interfaces=["veth0", "nope"])
    assert list(writes(named, "rps")) == ["/sys/class/net/veth0/queues/rx-0/rps_cpus"]
    assert [p.target for p in named.problems] == ["/sys/class/net/nope"]


def test_default_profile_plan_order(tmp_path):
    fake = FakeHost(tmp_path, 4)
    fake.irqbalance(enabled=True, active=True)
    fake.add_nic("eth0", 4)
    prof = load_profile()
    plan = make_plan(read_host(Host.open(tmp_path), prof.sysctls), prof)
    kinds = [c.kind for c in plan.changes]
    assert kinds[:3] == ["service-active", "service-enabled", "sysctl"]
    assert kinds.index("irq") < kinds.index("feature")
    assert plan.applicable


def test_already_tuned_host_plans_nothing(tmp_path):
    fake = FakeHost(tmp_path, 4)
    irqs = fake.add_nic("eth0", 2, misc_irq=None)
    for q, irq in enumerate(irqs):
        fake.write(f"proc/irq/{irq}/smp_affinity", f"0000000{1 << q}")   # other spelling
    plan = plan_of(tmp_path)
    assert plan.changes == [] and plan.unchanged == 2
