"""Generated fake /proc and /sys trees for the tuning tests.

A FakeHost writes, below a temporary root, the files the tuning tool reads,
in the kernel's formats and with the kernel's relative symbolic links::

    sys/devices/system/cpu/{possible,online,offline}, sys/devices/system/node/nodeK/cpulist
    sys/devices/pci0000:00/0000:03:00.0/{numa_node,msi_irqs/N,driver -> bus/.../ixgbe}
        .../net/eth0/queues/{rx-N/rps_cpus,rx-N/rps_flow_cnt,tx-N/xps_cpus}
        .../virtio3/{driver -> virtio_net, net/eth1/...}        (virtio NICs)
    sys/class/net/eth0 -> ../../devices/pci0000:00/0000:03:00.0/net/eth0
    sys/devices/virtual/net/veth0/queues/...                   (veth: no device)
    proc/interrupts, proc/irq/N/{smp_affinity,smp_affinity_list}, sys/kernel/irq/N/actions
    proc/sys/net/core/*, proc/sys/kernel/random/boot_id, sys/module/ip_vs/...
    .lvs-tune-fake/{features,services}.json
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from lvs_tools.tuning import cpumask

DEFAULT_FEATURES = {"rx-gro": [True, True], "rx-lro": [False, False],
                    "rx-gro-hw": [False, False], "rx-checksum": [True, True]}
CORE_SYSCTLS = {"netdev_max_backlog": "1000", "rps_sock_flow_entries": "0",
                "netdev_budget": "300", "netdev_budget_usecs": "2000", "dev_weight": "64"}


class FakeHost:
    """A fake machine with ``cpus`` possible CPUs split evenly over ``nodes``."""

    def __init__(self, root: Path, cpus: int, nodes: int = 1, offline: Iterable[int] = (),
                 boot_id: str = "0b0b0b0b-0000-4000-8000-000000000001",
                 sys_kernel_irq: bool = False) -> None:
        self.root, self.ncpus = root, cpus
        self.offline = frozenset(offline)
        self.online = [c for c in range(cpus) if c not in self.offline]
        self.sys_kernel_irq = sys_kernel_irq
        self.irqs: dict[int, str] = {}
        self.next_irq = 24
        self.virtio = 0
        self.features: dict[str, dict] = {}
        self.services: dict[str, dict] = {}
        self._cpus(nodes)
        for name, value in CORE_SYSCTLS.items():
            self.write(f"proc/sys/net/core/{name}", value)
        self.write("proc/sys/kernel/random/boot_id", boot_id)
        self._save()

    # --- files ------------------------------------------------------------
    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def write(self, rel: str, text: str, mode: int = 0o644) -> Path:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.chmod(0o644)
        path.write_text(text + "\n")
        path.chmod(mode)
        return path

    def read(self, rel: str) -> str:
        return self.path(rel).read_text().strip()

    def link(self, rel: str, target: str) -> None:
        """A symbolic link at ``rel`` to the host path ``target``, made relative
        as sysfs makes them."""
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        dest = self.path(target)
        dest.mkdir(parents=True, exist_ok=True)
        path.symlink_to(os.path.relpath(dest, path.parent))

    def mask(self, cpus: Iterable[int]) -> str:
        return cpumask.format_mask(cpus, self.ncpus)

    def readonly(self, rel: str) -> None:
        self.path(rel).chmod(0o444)

    def remove(self, rel: str) -> None:
        path = self.path(rel)
        if path.is_dir():
            for child in sorted(path.rglob("*"), reverse=True):
                child.unlink() if not child.is_dir() or child.is_symlink() else child.rmdir()
            path.rmdir()
        else:
            path.unlink()

    def snapshot(self) -> dict[str, str]:
        """Every regular file's text (to compare before and after)."""
        return {str(p.relative_to(self.root)): p.read_text().strip()
                for p in sorted(self.root.rglob("*"))
                if p.is_file() and not p.is_symlink() and "/run/" not in f"/{p.relative_to(self.root)}"}

    # --- CPUs -------------------------------------------------------------
    def _cpus(self, nodes: int) -> None:
        base = "sys/devices/system/cpu"
        self.write(f"{base}/possible", f"0-{self.ncpus - 1}" if self.ncpus > 1 else "0")
        self.write(f"{base}/online", cpumask.format_cpulist(self.online))
        self.write(f"{base}/offline", cpumask.format_cpulist(self.offline))
        per_node = self.ncpus // nodes
        self.node_cpus = {}
        for node in range(nodes):
            last = self.ncpus if node == nodes - 1 else (node + 1) * per_node
            cpus = range(node * per_node, last)
            self.node_cpus[node] = list(cpus)
            self.write(f"sys/devices/system/node/node{node}/cpulist",
                       cpumask.format_cpulist(cpus))

    # --- IRQs -------------------------------------------------------------
    def add_irq(self, name: str | None, proc_entry: bool = True) -> int:
        """A new IRQ with default affinity (all CPUs); ``name`` None: no handler."""
        irq = self.next_irq
        self.next_irq += 1
        if name is not None:
            self.irqs[irq] = name
        if proc_entry:
            self.write(f"proc/irq/{irq}/smp_affinity", self.mask(range(self.ncpus)))
            self.write(f"proc/irq/{irq}/smp_affinity_list", f"0-{self.ncpus - 1}")
        if self.sys_kernel_irq:
            self.write(f"sys/kernel/irq/{irq}/actions", name or "")
        self._interrupts()
        return irq

    def _interrupts(self) -> None:
        header = " " * 11 + "".join(f"CPU{c:<8}" for c in self.online)
        lines = [header.rstrip()]
        for irq, name in sorted(self.irqs.items()):
            counts = "".join(f"{n * 7:>11}" for n in range(len(self.online)))
            lines.append(f"{irq:>4}:{counts}  PCI-MSI {irq * 2048}-edge      {name}")
        lines.append(f" NMI:{''.join(f'{0:>11}' for _ in self.online)}   Non-maskable interrupts")
        self.write("proc/interrupts", "\n".join(lines))

    # --- NICs -------------------------------------------------------------
    def _queues(self, netdir: str, rx: int, tx: int) -> None:
        for q in range(rx):
            self.write(f"{netdir}/queues/rx-{q}/rps_cpus", self.mask(()))
            self.write(f"{netdir}/queues/rx-{q}/rps_flow_cnt", "0")
        for q in range(tx):
            # xps_cpus of a single-queue device refuses reads (ENOENT): absent here.
            if tx > 1:
                self.write(f"{netdir}/queues/tx-{q}/xps_cpus", self.mask(()))
            else:
                self.path(f"{netdir}/queues/tx-{q}").mkdir(parents=True, exist_ok=True)

    def add_nic(self, name: str, queues: int = 1, *, driver: str = "ixgbe", node: int = 0,
                pci: str | None = None, irq_names: tuple[str, ...] = ("{nic}-TxRx-{q}",),
                misc_irq: str | None = "{nic}-misc", tx_queues: int | None = None,
                virtio: bool = False, irq_queues: int | None = None,
                features: dict | None = None) -> list[int]:
        """A PCI (or virtio-over-PCI) NIC with an MSI-X IRQ per queue and name
        pattern (virtio: input and output); returns the IRQ numbers, queue
        IRQs first, in queue order."""
        pci = pci or f"0000:{3 + len(self.features):02x}:00.0"
        pcidir = f"sys/devices/pci0000:00/{pci}"
        self.write(f"{pcidir}/numa_node", str(node))
        if virtio:
            device = f"{pcidir}/virtio{self.virtio}"
            self.link(f"{device}/driver", "sys/bus/virtio/drivers/virtio_net")
            self.virtio += 1
        else:
            device = pcidir
            self.link(f"{device}/driver", f"sys/bus/pci/drivers/{driver}")
        netdir = f"{device}/net/{name}"
        self._queues(netdir, queues, queues if tx_queues is None else tx_queues)
        self.path("sys/class/net").mkdir(parents=True, exist_ok=True)
        self.link(f"sys/class/net/{name}", netdir)
        self.link(f"{netdir}/device", device)
        irqs = []
        names = [pattern.format(nic=name, q=q, v=self.virtio - 1)
                 for q in range(queues if irq_queues is None else irq_queues)
                 for pattern in irq_names]
        if misc_irq:
            names.append(misc_irq.format(nic=name, v=self.virtio - 1))
        for text in names:
            irq = self.add_irq(text)
            self.write(f"{pcidir}/msi_irqs/{irq}", "msix")
            irqs.append(irq)
        self.features[name] = json.loads(json.dumps(features or DEFAULT_FEATURES))
        self._save()
        return irqs

    def add_veth(self, name: str, queues: int = 1) -> None:
        netdir = f"sys/devices/virtual/net/{name}"
        self._queues(netdir, queues, queues)
        self.path("sys/class/net").mkdir(parents=True, exist_ok=True)
        self.link(f"sys/class/net/{name}", netdir)
        self.features[name] = {"rx-gro": [False, True], "rx-lro": [False, False],
                                "rx-gro-hw": [False, False]}
        self._save()

    # --- services, IPVS ----------------------------------------------------
    def irqbalance(self, enabled: bool, active: bool) -> None:
        self.services["irqbalance"] = {"enabled": enabled, "active": active}
        self._save()

    def ipvs(self, conn_tab_bits: int = 12, **sysctls: str) -> None:
        self.write("sys/module/ip_vs/parameters/conn_tab_bits", str(conn_tab_bits), 0o444)
        for name, value in {"conntrack": "0", **sysctls}.items():
            self.write(f"proc/sys/net/ipv4/vs/{name}", value)

    def _save(self) -> None:
        self.write(".lvs-tune-fake/features.json", json.dumps(self.features, indent=1,
                                                              sort_keys=True))
        self.write(".lvs-tune-fake/services.json", json.dumps(self.services, indent=1,
                                                              sort_keys=True))


VIRTIO_IRQS = ("virtio{v}-input.{q}", "virtio{v}-output.{q}")


def add_virtio_nic(host: FakeHost, name: str, queues: int, **kwargs) -> list[int]:
    """A virtio-net NIC as QEMU's virtio-net-pci with mq=on shows it."""
    return host.add_nic(name, queues, virtio=True, irq_names=VIRTIO_IRQS,
                        misc_irq="virtio{v}-config", **kwargs)
