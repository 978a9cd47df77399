"""Reading hosts (tools/lvs_tools/tuning/facts.py) from generated fake trees."""

from __future__ import annotations

import pytest

from lvs_tools.tuning import facts as F
from lvs_tools.tuning.backends import Host

from tests.unit.tuning_fake import FakeHost, add_virtio_nic

INTERRUPTS = """\
           CPU0       CPU1       CPU2       CPU3
   0:         44          0          0          0   IO-APIC   2-edge      timer
   9:          0          0          0          0   IO-APIC   9-fasteoi   acpi
  24:          0          0          0          0   PCI-MSI 49152-edge      virtio0-config
  25:       1234          0          0          0   PCI-MSI 49153-edge      virtio0-input.0
  26:          1          0          0          0   PCI-MSI 49154-edge      virtio0-output.0
  40:          0          0          0          0  IR-PCI-MSI 1572864-edge      i40e-0000:03:00.0:misc
  41:          7          0          0          0  IR-PCI-MSI 1572865-edge      i40e-eth2-TxRx-0
  50:          0          0          0          0  IR-PCI-MSI 2097152-edge      mlx5_comp3@pci:0000:3b:00.0
  60:          1          1          1          1   IO-APIC  16-fasteoi   eth3, eth4
  61:          0          0          0          0   PCI-MSI 1-edge
 NMI:          0          0          0          0   Non-maskable interrupts
 LOC:        100        100        100        100   Local timer interrupts
"""


def test_parse_interrupts_names_irqs():
    names = F.parse_interrupts(INTERRUPTS)
    assert names[0] == "timer"
    assert names[25] == "virtio0-input.0"
    assert names[41] == "i40e-eth2-TxRx-0"
    assert names[50] == "mlx5_comp3@pci:0000:3b:00.0"
    assert names[60] == "eth3, eth4"
    assert 61 not in names            # no handler: no name
    assert all(isinstance(k, int) for k in names)


@pytest.mark.parametrize("name, ifname, expected", [
    ("virtio0-input.3", "eth0", (3, "rx")),
    ("virtio0-output.3", "eth0", (3, "tx")),
    ("virtio0-config", "eth0", (None, "other")),
    ("eth0-TxRx-7", "eth0", (7, "rxtx")),
    ("i40e-eth0-TxRx-12", "eth0", (12, "rxtx")),
    ("i40e-0000:03:00.0:misc", "eth0", (None, "other")),
    ("eth0-rx-2", "eth0", (2, "rx")),
    ("eth0-tx-2", "eth0", (2, "tx")),
    ("mlx5_comp5@pci:0000:3b:00.0", "ens1f0", (5, "rxtx")),
    ("mlx5_async0@pci:0000:3b:00.0", "ens1f0", (None, "other")),
    ("ens1f0-fp-4", "ens1f0", (4, "rxtx")),
    ("ena-io-1", "eth0", (1, "rxtx")),
    ("eth0-5", "eth0", (5, "rxtx")),
    ("eth0", "eth0", (None, "other")),
    (None, "eth0", (None, "other")),
])
def test_queue_numbers_from_irq_names(name, ifname, expected):
    assert F.classify_irq(name, ifname) == expected


@pytest.mark.parametrize("ncpus, nodes", [(2, 1), (16, 1), (16, 2), (96, 2), (130, 2)])
def test_cpus_and_nodes(tmp_path, ncpus, nodes):
    fake = FakeHost(tmp_path, ncpus, nodes=nodes, offline={1})
    cpus = F.read_cpus(Host.open(tmp_path).fs)
    assert cpus.possible == ncpus
    assert 1 not in cpus.online and len(cpus.online) == ncpus - 1
    assert sorted(cpus.nodes) == list(range(nodes))
    assert set().union(*cpus.nodes.values()) == set(range(ncpus))
    last = nodes - 1
    assert cpus.node_cpus(last) == tuple(c for c in fake.node_cpus[last] if c != 1)


def test_no_node_folder_means_one_node(tmp_path):
    fake = FakeHost(tmp_path, 4)
    fake.remove("sys/devices/system/node")
    assert F.read_cpus(Host.open(tmp_path).fs).nodes == {0: frozenset(range(4))}


def test_multiqueue_nic(tmp_path):
    fake = FakeHost(tmp_path, 16)
    irqs = fake.add_nic("eth0", 8, node=0)
    nic = F.read_host(Host.open(tmp_path)).nics["eth0"]
    assert nic.driver == "ixgbe" and nic.numa_node == 0
    assert nic.device == "/sys/devices/pci0000:00/0000:03:00.0"
    assert [q.index for q in nic.rx] == list(range(8)) and len(nic.tx) == 8
    assert [i.number for i in nic.irqs] == irqs
    assert [(i.queue, i.direction) for i in nic.queue_irqs] == [(q, "rxtx") for q in range(8)]
    assert nic.irqs[-1].queue is None              # eth0-misc
    assert nic.irqs[0].affinity.text == "ffff"
    assert nic.irqs[0].affinity.path == f"/proc/irq/{irqs[0]}/smp_affinity"
    assert nic.rx[0].rps_cpus.text == "0000" and nic.tx[3].xps_cpus.text == "0000"
    assert nic.features["rx-gro"].enabled and not nic.features["rx-lro"].changeable
    assert nic.queue_count == 8


def test_virtio_irqs_come_from_the_pci_parent(tmp_path):
    fake = FakeHost(tmp_path, 2)
    irqs = add_virtio_nic(fake, "eth0", 4)
    nic = F.read_host(Host.open(tmp_path)).nics["eth0"]
    assert nic.driver == "virtio_net"
    assert nic.device.endswith("/0000:03:00.0/virtio0")
    assert [i.number for i in nic.irqs] == irqs
    assert [(i.queue, i.direction) for i in nic.queue_irqs] == \
        [(q, d) for q in range(4) for d in ("rx", "tx")]


def test_names_from_sys_kernel_irq(tmp_path):
    fake = FakeHost(tmp_path, 4, sys_kernel_irq=True)
    fake.add_nic("eth0", 2)
    fake.remove("proc/interrupts")
    nic = F.read_host(Host.open(tmp_path)).nics["eth0"]
    assert [i.name for i in nic.irqs] == ["eth0-TxRx-0", "eth0-TxRx-1", "eth0-misc"]


def test_single_irq_single_queue_nic(tmp_path):
    fake = FakeHost(tmp_path, 4)
    fake.add_nic("eth0", 1, irq_names=("eth0",), misc_irq=None, driver="e1000")
    nic = F.read_host(Host.open(tmp_path)).nics["eth0"]
    assert [(i.queue, i.direction) for i in nic.irqs] == [(0, "rxtx")]
    assert len(nic.rx) == 1 and nic.tx[0].xps_cpus.missing


def test_missing_irq_entries(tmp_path):
    """An MSI IRQ without a handler (no name) and one without /proc/irq/N."""
    fake = FakeHost(tmp_path, 4)
    irqs = fake.add_nic("eth0", 2, misc_irq=None)
    unnamed = fake.add_irq(None)
    fake.write(f"sys/devices/pci0000:00/0000:03:00.0/msi_irqs/{unnamed}", "msix")
    fake.remove(f"proc/irq/{irqs[1]}")
    nic = F.read_host(Host.open(tmp_path)).nics["eth0"]
    by_number = {i.number: i for i in nic.irqs}
    assert by_number[unnamed].queue is None and by_number[unnamed].name is None
    assert any(f"IRQ {unnamed}" in n and "no name" in n for n in nic.notes)
    assert by_number[irqs[1]].queue == 1 and by_number[irqs[1]].affinity.missing


def test_bonding_masters_is_not_a_nic(tmp_path):
    fake = FakeHost(tmp_path, 2)
    fake.add_veth("veth0")
    fake.write("sys/class/net/bonding_masters", "bond0")
    assert F.list_nics(Host.open(tmp_path).fs) == ["veth0"]


def test_veth_has_no_device_and_no_irqs(tmp_path):
    fake = FakeHost(tmp_path, 4)
    fake.add_veth("veth0")
    nic = F.read_host(Host.open(tmp_path)).nics["veth0"]
    assert nic.device is None and nic.irqs == () and nic.numa_node is None
    assert len(nic.rx) == 1


def test_numa_node_minus_one_is_unknown(tmp_path):
    fake = FakeHost(tmp_path, 8, nodes=2)
    fake.add_nic("eth0", 2, node=-1)
    assert F.read_host(Host.open(tmp_path)).nics["eth0"].numa_node is None


def test_sysctls_irqbalance_ipvs(tmp_path):
    fake = FakeHost(tmp_path, 2)
    fake.irqbalance(enabled=True, active=True)
    fake.ipvs(conn_tab_bits=12)
    fake.write("etc/modprobe.d/ipvs.conf", "# comment\noptions ip_vs conn_tab_bits=18 # x\n")
    found = F.read_host(Host.open(tmp_path), sysctls=["net.ipv4.vs.conntrack", "net.core.x"])
    assert found.sysctls["net.core.netdev_max_backlog"].text == "1000"
    assert found.sysctls["net.ipv4.vs.conntrack"].text == "0"
    assert found.sysctls["net.core.x"].missing
    assert found.irqbalance.active and found.irqbalance.enabled
    assert found.ipvs.loaded and found.ipvs.conn_tab_bits.text == "12"
    assert not found.ipvs.conn_tab_bits.writable
    assert (found.ipvs.configured_bits, found.ipvs.configured_in) == (18, "/etc/modprobe.d/ipvs.conf")
    assert found.boot_id.startswith("0b0b")


def test_read_only_files_are_marked(tmp_path):
    fake = FakeHost(tmp_path, 2)
    irqs = fake.add_nic("eth0", 2)
    fake.readonly(f"proc/irq/{irqs[0]}/smp_affinity")
    nic = F.read_host(Host.open(tmp_path)).nics["eth0"]
    assert not nic.irqs[0].affinity.writable and nic.irqs[1].affinity.writable
