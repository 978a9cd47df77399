"""apply / revert / audit (tools/lvs_tools/tuning/apply.py, audit.py) on fake trees."""

from __future__ import annotations

import errno
import json

import pytest

from lvs_tools.tuning import apply as A
from lvs_tools.tuning.api import Tuner
from lvs_tools.tuning.backends import Host
from lvs_tools.tuning.hostfs import HostFS
from lvs_tools.tuning.profile import parse_profile

from tests.unit.tuning_fake import FakeHost, add_virtio_nic

PROFILE = {"strategy": "per-cpu", "rps": "single-queue", "xps": True, "irqbalance": "off",
           "sysctls": {"net.core.netdev_max_backlog": 262144},
           "offloads": {"gro": False, "lro": False}}


def balancer(tmp_path, ncpus: int = 16, nodes: int = 1) -> FakeHost:
    """A balancer-like fake host: two NICs, one single-queue NIC, irqbalance on."""
    fake = FakeHost(tmp_path, ncpus, nodes=nodes)
    fake.add_nic("eth0", min(ncpus, 8), node=nodes - 1)
    add_virtio_nic(fake, "eth1", 2)
    fake.add_nic("eth2", 1, irq_names=("eth2",), misc_irq=None)
    fake.irqbalance(enabled=True, active=True)
    return fake


def tuner(tmp_path, **overrides) -> Tuner:
    return Tuner.open(tmp_path, parse_profile({**PROFILE, **overrides}, "test"))


@pytest.mark.parametrize("ncpus, nodes", [(2, 1), (16, 1), (96, 2), (130, 2)])
def test_apply_then_revert_restores_every_file(tmp_path, ncpus, nodes):
    fake = balancer(tmp_path, ncpus, nodes)
    before = fake.snapshot()
    t = tuner(tmp_path)
    written = t.apply()
    assert len(written) > 10
    for change in written:
        assert A.same_value(change.kind, A.read_current(t.host, change.kind, change.target),
                            change.new)
    assert fake.read("proc/sys/net/core/netdev_max_backlog") == "262144"
    assert json.loads(fake.read(".lvs-tune-fake/services.json"))["irqbalance"] == \
        {"enabled": False, "active": False}
    assert t.audit() == []
    state = json.loads(fake.read("run/lvs-toolkit/tuning-state.json"))
    assert len(state["entries"]) == len(written)
    result = t.revert()
    assert result.errors == [] and len(result.restored) == len(written)
    assert fake.snapshot() == before
    assert not fake.path("run/lvs-toolkit/tuning-state.json").exists()


def test_values_written_in_kernel_format(tmp_path):
    fake = FakeHost(tmp_path, 130, nodes=2)
    irqs = fake.add_nic("eth0", 130, misc_irq=None)
    tuner(tmp_path).apply()
    assert fake.read(f"proc/irq/{irqs[129]}/smp_affinity") == \
        "2,00000000,00000000,00000000,00000000"
    assert fake.read("sys/class/net/eth0/queues/tx-64/xps_cpus") == \
        "0,00000000,00000001,00000000,00000000"


def test_second_apply_keeps_the_first_old_values(tmp_path):
    fake = balancer(tmp_path, 4)
    before = fake.snapshot()
    tuner(tmp_path).apply()
    tuner(tmp_path, sysctls={"net.core.netdev_max_backlog": 5000}).apply()
    assert fake.read("proc/sys/net/core/netdev_max_backlog") == "5000"
    state = json.loads(fake.read("run/lvs-toolkit/tuning-state.json"))
    backlog = [e for e in state["entries"] if e["target"].endswith("netdev_max_backlog")]
    assert [(e["old"], e["new"]) for e in backlog] == [("1000", "5000")]
    tuner(tmp_path).revert()
    assert fake.snapshot() == before


def test_nothing_written_when_the_plan_has_problems(tmp_path):
    fake = balancer(tmp_path, 4)
    fake.readonly("sys/class/net/eth2/queues/rx-0/rps_cpus")
    before = fake.snapshot()
    t = tuner(tmp_path)
    with pytest.raises(A.ApplyError, match="1 problem.*nothing written"):
        t.apply()
    assert fake.snapshot() == before
    assert not fake.path("run/lvs-toolkit/tuning-state.json").exists()


def test_nothing_written_when_the_host_changed_since_the_plan(tmp_path):
    fake = balancer(tmp_path, 4)
    t = tuner(tmp_path)
    plan = t.plan()
    fake.write("proc/sys/net/core/netdev_max_backlog", "2000")
    before = fake.snapshot()
    with pytest.raises(A.ApplyError, match="changed since the plan"):
        t.apply(plan)
    assert fake.snapshot() == before


class FailingFS(HostFS):
    """Refuses writes to one path, as the kernel refuses a managed IRQ (EIO)."""

    def __init__(self, root, fail: str) -> None:
        super().__init__(root)
        self.fail = fail

    def write(self, path: str, value: str) -> None:
        if path == self.fail:
            raise OSError(errno.EIO, "Input/output error")
        super().write(path, value)


def test_a_failed_write_rolls_back_everything(tmp_path):
    fake = balancer(tmp_path, 4)
    fake.write("run/lvs-toolkit/tuning-state.json", json.dumps(
        {"version": 1, "boot_id": fake.read("proc/sys/kernel/random/boot_id"),
         "profile": "x", "entries": []}))
    before = fake.snapshot()
    state_before = fake.read("run/lvs-toolkit/tuning-state.json")
    host = Host.open(tmp_path)
    plan = tuner(tmp_path).plan()
    target = [c for c in plan.changes if c.kind == "irq"][-1].target
    host.fs = FailingFS(tmp_path, target)
    with pytest.raises(A.ApplyError, match="Input/output error") as err:
        A.apply(host, plan)
    assert err.value.rollback_errors == ()
    assert len(err.value.rolled_back) == plan.changes.index(
        next(c for c in plan.changes if c.target == target))
    assert fake.snapshot() == before
    assert fake.read("run/lvs-toolkit/tuning-state.json") == state_before


def test_a_value_that_does_not_read_back_fails_and_rolls_back(tmp_path):
    fake = balancer(tmp_path, 4)
    before = fake.snapshot()

    plan = tuner(tmp_path).plan()
    stubborn_irq = [c for c in plan.changes if c.kind == "irq"][1].target

    class Stubborn(HostFS):
        """Takes the write but keeps CPU 0 (as a kernel might for a
        restricted IRQ) unless it is given back its old value."""

        def write(self, path: str, value: str) -> None:
            keep = path == stubborn_irq and value != "f"
            super().write(path, "1" if keep else value)

    host = Host.open(tmp_path)
    host.fs = Stubborn(tmp_path)
    with pytest.raises(A.ApplyError, match="reads back") as err:
        A.apply(host, plan)
    assert err.value.rollback_errors == ()
    assert fake.snapshot() == before


def test_revert_needs_a_state_file_of_this_boot(tmp_path):
    fake = balancer(tmp_path, 4)
    t = tuner(tmp_path)
    with pytest.raises(A.RevertError, match="nothing to revert"):
        t.revert()
    t.apply()
    fake.write("proc/sys/kernel/random/boot_id", "another-boot")
    with pytest.raises(A.RevertError, match="another boot"):
        t.revert()


def test_apply_after_reboot_ignores_a_stale_state_file(tmp_path):
    fake = balancer(tmp_path, 4)
    tuner(tmp_path).apply()
    fake.write("proc/sys/kernel/random/boot_id", "second-boot")
    fake.write("proc/sys/net/core/netdev_max_backlog", "1000")     # "after reboot"
    tuner(tmp_path).apply()
    state = json.loads(fake.read("run/lvs-toolkit/tuning-state.json"))
    assert state["boot_id"] == "second-boot"
    assert [e["target"] for e in state["entries"]] == ["/proc/sys/net/core/netdev_max_backlog"]


def test_revert_keeps_what_it_could_not_restore(tmp_path):
    fake = balancer(tmp_path, 4)
    t = tuner(tmp_path)
    written = t.apply()
    target = next(c.target for c in written if c.kind == "rps")
    fake.readonly(target.lstrip("/"))
    host = t.host
    host.fs = FailingFS(tmp_path, target)
    result = A.revert(host)
    assert len(result.errors) == 1 and target in result.errors[0]
    state = json.loads(fake.read("run/lvs-toolkit/tuning-state.json"))
    assert [e["target"] for e in state["entries"]] == [target]


def test_revert_skips_values_already_back(tmp_path):
    fake = balancer(tmp_path, 4)
    t = tuner(tmp_path)
    t.apply()
    fake.write("proc/sys/net/core/netdev_max_backlog", "1000")
    result = t.revert()
    assert any("netdev_max_backlog: already 1000" in s for s in result.skipped)


def test_audit_lists_each_deviation(tmp_path):
    fake = balancer(tmp_path, 4)
    t = tuner(tmp_path, ipvs={"conn_tab_bits": 20})
    found = t.audit()
    assert len(found) == len(t.plan().changes) + 1
    assert any(d.target == "irqbalance" and "is active" in d.message for d in found)
    assert any(d.target == "note" and "conn_tab_bits" in d.message for d in found)
    masks = [str(d) for d in found if "smp_affinity" in d.target]
    assert masks and all("(CPU 0-3)" in m for m in masks)
    t.apply()
    assert [d.target for d in t.audit()] == ["note"]
    fake.write("etc/modprobe.d/ipvs.conf", "options ip_vs conn_tab_bits=20")
    assert t.audit() == []
    fake.write("proc/sys/net/core/netdev_max_backlog", "1000")
    assert [d.target for d in t.audit()] == ["/proc/sys/net/core/netdev_max_backlog"]
