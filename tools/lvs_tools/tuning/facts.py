"""Read the host: CPUs, NUMA nodes, NICs with their queues and IRQs, masks,
NIC features, sysctls, irqbalance and IPVS.

Nothing here writes or prints.  ``read_host(host)`` returns a HostFacts that
the planner turns into writes; every value it may write is kept as a
``Value`` (path, text or None when missing, writable or not) so that the
plan can say exactly what is missing or read-only.

Where the facts come from::

    /sys/devices/system/cpu/{possible,online}        CPU numbers (mask width = possible)
    /sys/devices/system/node/node*/cpulist          NUMA nodes
    /sys/class/net/IF/device -> .../0000:03:00.0    the NIC's device (virtio: .../virtio0)
        .../msi_irqs/N  (or the parent's, virtio)   its MSI/MSI-X IRQs
        .../numa_node, .../driver                    node and driver
    /sys/class/net/IF/queues/rx-N/{rps_cpus,rps_flow_cnt}, tx-N/xps_cpus
    /sys/kernel/irq/N/actions or /proc/interrupts  IRQ names -> queue numbers
    /proc/irq/N/{smp_affinity,smp_affinity_list}   IRQ affinity
    /proc/sys/...                                    sysctls
    /sys/module/ip_vs/parameters/conn_tab_bits       IPVS session table size
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable

from lvs_tools.tuning import cpumask
from lvs_tools.tuning.backends import BackendError, Feature, Host, ServiceState
from lvs_tools.tuning.hostfs import HostFS, HostReadError

# Sysctls read on every host (the profile may name more).
BASE_SYSCTLS = ("net.core.netdev_max_backlog", "net.core.rps_sock_flow_entries",
                "net.core.netdev_budget", "net.core.netdev_budget_usecs",
                "net.core.dev_weight")
IPVS_SYSCTL_DIR = "/proc/sys/net/ipv4/vs"
CONN_TAB_BITS = "/sys/module/ip_vs/parameters/conn_tab_bits"
MODPROBE_DIRS = ("/lib/modprobe.d", "/usr/lib/modprobe.d", "/run/modprobe.d", "/etc/modprobe.d")

# The queue part of an IRQ name: virtio0-input.3, eth0-TxRx-3, i40e-eth0-TxRx-3,
# eth0-rx-3, mlx5_comp3@pci:0000:3b:00.0, ens1f0-fp-3, ena-io-3.
QUEUE_NAME = re.compile(
    r"(?:^|[-_.@:])(txrx|rxtx|combined|input|output|rx|tx|fp|comp|io|ch|queue)"
    r"[-_.]?(\d+)(?:@\S*)?$", re.IGNORECASE)
DIRECTIONS = {"rx": "rx", "input": "rx", "tx": "tx", "output": "tx"}


@dataclasses.dataclass(frozen=True)
class Value:
    """A kernel file: its path, its text (None if missing), writable or not."""

    path: str
    text: str | None
    writable: bool

    @property
    def missing(self) -> bool:
        return self.text is None


def read_value(fs: HostFS, path: str) -> Value:
    """The file's value; unreadable files count as missing."""
    try:
        text = fs.read(path)
    except HostReadError:
        text = None
    return Value(path, text, fs.writable(path))


def sysctl_path(key: str) -> str:
    """``net.core.netdev_max_backlog`` -> ``/proc/sys/net/core/netdev_max_backlog``."""
    return "/proc/sys/" + key.replace(".", "/")


@dataclasses.dataclass(frozen=True)
class CpuFacts:
    """CPU numbering: ``possible`` is the mask width, ``online`` the usable CPUs."""

    possible: int
    online: tuple[int, ...]
    nodes: dict[int, frozenset[int]]   # node -> its CPUs (online or not)

    def node_cpus(self, node: int) -> tuple[int, ...]:
        """The online CPUs of a NUMA node, ascending."""
        return tuple(c for c in self.online if c in self.nodes.get(node, ()))


@dataclasses.dataclass(frozen=True)
class IrqFacts:
    """One IRQ of a NIC and the queue its name says it serves."""

    number: int
    name: str | None           # action name; None if the kernel shows none
    queue: int | None          # None: not a queue IRQ (config, misc, unnamed)
    direction: str             # rx, tx, rxtx (combined), other
    affinity: Value            # /proc/irq/N/smp_affinity
    affinity_list: Value       # /proc/irq/N/smp_affinity_list


@dataclasses.dataclass(frozen=True)
class RxQueue:
    index: int
    rps_cpus: Value
    rps_flow_cnt: Value


@dataclasses.dataclass(frozen=True)
class TxQueue:
    index: int
    xps_cpus: Value


@dataclasses.dataclass
class NicFacts:
    """A network interface as the planner needs it."""

    name: str
    device: str | None          # resolved device folder; None for virtual NICs
    driver: str | None
    numa_node: int | None       # None: unknown (no NUMA or -1)
    rx: tuple[RxQueue, ...]
    tx: tuple[TxQueue, ...]
    irqs: tuple[IrqFacts, ...]
    features: dict[str, Feature]
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def queue_irqs(self) -> tuple[IrqFacts, ...]:
        return tuple(irq for irq in self.irqs if irq.queue is not None)

    @property
    def queue_count(self) -> int:
        """Queues to spread: the most of rx, tx and queue IRQs."""
        irq_queues = max((irq.queue + 1 for irq in self.queue_irqs), default=0)
        return max(len(self.rx), len(self.tx), irq_queues, 1)


@dataclasses.dataclass(frozen=True)
class IpvsFacts:
    loaded: bool
    conn_tab_bits: Value
    configured_bits: int | None          # from "options ip_vs conn_tab_bits=N"
    configured_in: str | None
    sysctls: dict[str, str | None]


@dataclasses.dataclass
class HostFacts:
    cpus: CpuFacts
    nics: dict[str, NicFacts]
    sysctls: dict[str, Value]
    irqbalance: ServiceState
    ipvs: IpvsFacts
    boot_id: str | None


def read_host(host: Host, sysctls: Iterable[str] = ()) -> HostFacts:
    """Everything the planner needs, plus the sysctls a profile names."""
    fs = host.fs
    cpus = read_cpus(fs)
    names = irq_names(fs)
    nics = {name: read_nic(host, name, names) for name in list_nics(fs)}
    keys = dict.fromkeys([*BASE_SYSCTLS, *sysctls])
    return HostFacts(cpus=cpus, nics=nics,
                     sysctls={key: read_value(fs, sysctl_path(key)) for key in keys},
                     irqbalance=host.services.get("irqbalance"),
                     ipvs=read_ipvs(fs), boot_id=fs.read("/proc/sys/kernel/random/boot_id"))


# --- CPUs and nodes -------------------------------------------------------

def read_cpus(fs: HostFS) -> CpuFacts:
    """Possible and online CPUs and the NUMA nodes (one node 0 if none shown)."""
    possible_text = fs.read("/sys/devices/system/cpu/possible")
    online_text = fs.read("/sys/devices/system/cpu/online")
    if possible_text is None or online_text is None:
        raise HostReadError(2, "/sys/devices/system/cpu/{possible,online} missing: "
                               "is /sys mounted?")
    possible = cpumask.parse_cpulist(possible_text)
    online = tuple(sorted(cpumask.parse_cpulist(online_text)))
    nodes: dict[int, frozenset[int]] = {}
    for entry in fs.listdir("/sys/devices/system/node"):
        match = re.fullmatch(r"node(\d+)", entry)
        text = fs.read(f"/sys/devices/system/node/{entry}/cpulist") if match else None
        if match and text is not None:
            nodes[int(match.group(1))] = cpumask.parse_cpulist(text)
    if not nodes:
        nodes = {0: frozenset(possible)}
    return CpuFacts(possible=max(possible) + 1, online=online, nodes=nodes)


# --- IRQ names ------------------------------------------------------------

def parse_interrupts(text: str) -> dict[int, str]:
    """IRQ number -> action names (``"eth0-TxRx-0"``; shared: ``"a, b"``)
    from the text of /proc/interrupts."""
    lines = text.splitlines()
    if not lines:
        return {}
    ncpus = len(lines[0].split())
    found: dict[int, str] = {}
    for line in lines[1:]:
        head, _, rest = line.partition(":")
        if not head.strip().isdigit():
            continue
        tokens = rest.split()[ncpus:]
        name = _action_names(tokens)
        if name:
            found[int(head)] = name
    return found


def _action_names(tokens: list[str]) -> str | None:
    """The action names at the end of an interrupts line (chip, hwirq and
    trigger type come first)."""
    if len(tokens) < 2:
        return None
    index = len(tokens) - 1
    while index > 0 and tokens[index - 1].endswith(","):
        index -= 1
    if re.search(r"-(edge|level|fasteoi|simple)$", tokens[index], re.IGNORECASE):
        return None
    return " ".join(tokens[index:])


def irq_names(fs: HostFS) -> dict[int, str]:
    """IRQ -> action names, from /sys/kernel/irq/N/actions where the kernel
    has it, else from /proc/interrupts."""
    names = parse_interrupts(fs.read("/proc/interrupts") or "")
    for entry in fs.listdir("/sys/kernel/irq"):
        actions = fs.read(f"/sys/kernel/irq/{entry}/actions") if entry.isdigit() else None
        if actions:
            names[int(entry)] = ", ".join(a.strip() for a in actions.split(","))
    return names


def classify_irq(name: str | None, ifname: str) -> tuple[int | None, str]:
    """The queue number and direction an IRQ name means, or (None, "other")."""
    if not name:
        return None, "other"
    for action in name.split(", "):
        match = QUEUE_NAME.search(action)
        if match:
            return int(match.group(2)), DIRECTIONS.get(match.group(1).lower(), "rxtx")
        match = re.fullmatch(rf"{re.escape(ifname)}-(\d+)", action)
        if match:
            return int(match.group(1)), "rxtx"
    return None, "other"


def _names_nic(name: str, ifname: str) -> bool:
    return any(action == ifname or action.startswith(f"{ifname}-") or f"-{ifname}-" in action
               for action in name.split(", "))


# --- NICs -----------------------------------------------------------------

def list_nics(fs: HostFS) -> list[str]:
    """Network interfaces except loopback."""
    return [name for name in fs.listdir("/sys/class/net")
            if name != "lo" and fs.is_dir(f"/sys/class/net/{name}")]


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def device_irqs(fs: HostFS, device: str | None, ifname: str,
                names: dict[int, str]) -> list[int]:
    """IRQs of a NIC: its device's MSI IRQs (virtio: the PCI parent's), the
    legacy IRQ line if it has no MSI, and any IRQ named after the interface."""
    found: set[int] = set()
    if device:
        for folder in (device, _parent(device)):
            msi = [int(n) for n in fs.listdir(f"{folder}/msi_irqs") if n.isdigit()]
            if msi:
                found.update(msi)
                break
        legacy = fs.read(f"{device}/irq")
        if not found and legacy and legacy.isdigit() and int(legacy) in names:
            found.add(int(legacy))
    found.update(irq for irq, name in names.items() if _names_nic(name, ifname))
    return sorted(found)


def read_irq(fs: HostFS, number: int, name: str | None, ifname: str) -> IrqFacts:
    queue, direction = classify_irq(name, ifname)
    return IrqFacts(number, name, queue, direction,
                    read_value(fs, f"/proc/irq/{number}/smp_affinity"),
                    read_value(fs, f"/proc/irq/{number}/smp_affinity_list"))


def _numa_node(fs: HostFS, device: str | None) -> int | None:
    if not device:
        return None
    for folder in (device, _parent(device)):
        text = fs.read(f"{folder}/numa_node")
        if text is not None and re.fullmatch(r"-?\d+", text):
            return int(text) if int(text) >= 0 else None
    return None


def _queues(fs: HostFS, ifname: str, kind: str) -> list[int]:
    base = f"/sys/class/net/{ifname}/queues"
    return sorted(int(entry[3:]) for entry in fs.listdir(base)
                  if entry.startswith(f"{kind}-") and entry[3:].isdigit())


def read_nic(host: Host, ifname: str, names: dict[int, str]) -> NicFacts:
    """One interface: device, driver, node, queues, IRQs, features."""
    fs = host.fs
    base = f"/sys/class/net/{ifname}"
    device = fs.resolve(f"{base}/device") if fs.exists(f"{base}/device") else None
    driver = fs.resolve(f"{device}/driver") if device else None
    notes: list[str] = []
    irqs = []
    for number in device_irqs(fs, device, ifname, names):
        irq = read_irq(fs, number, names.get(number), ifname)
        if irq.name is None:
            notes.append(f"IRQ {number} of {ifname} has no name in /proc/interrupts "
                         f"(no handler): not touched")
        irqs.append(irq)
    if irqs and not any(irq.queue is not None for irq in irqs) and len(irqs) == 1 \
            and irqs[0].name is not None:
        irqs[0] = dataclasses.replace(irqs[0], queue=0, direction="rxtx")
    rx = tuple(RxQueue(i, read_value(fs, f"{base}/queues/rx-{i}/rps_cpus"),
                       read_value(fs, f"{base}/queues/rx-{i}/rps_flow_cnt"))
               for i in _queues(fs, ifname, "rx"))
    tx = tuple(TxQueue(i, read_value(fs, f"{base}/queues/tx-{i}/xps_cpus"))
               for i in _queues(fs, ifname, "tx"))
    try:
        features = host.features.get(ifname)
    except BackendError as exc:
        features = {}
        notes.append(str(exc))
    return NicFacts(ifname, device, driver.rsplit("/", 1)[-1] if driver else None,
                    _numa_node(fs, device), rx, tx, tuple(irqs), features, notes)


# --- IPVS -----------------------------------------------------------------

def configured_conn_tab_bits(fs: HostFS) -> tuple[int | None, str | None]:
    """``options ip_vs conn_tab_bits=N`` from modprobe.d (later folders win)."""
    found: tuple[int | None, str | None] = (None, None)
    for folder in MODPROBE_DIRS:
        for entry in fs.listdir(folder):
            if not entry.endswith(".conf"):
                continue
            for line in (fs.read(f"{folder}/{entry}") or "").splitlines():
                words = line.split("#", 1)[0].split()
                if words[:2] != ["options", "ip_vs"]:
                    continue
                for word in words[2:]:
                    key, _, value = word.partition("=")
                    if key == "conn_tab_bits" and value.isdigit():
                        found = (int(value), f"{folder}/{entry}")
    return found


def read_ipvs(fs: HostFS) -> IpvsFacts:
    bits, where = configured_conn_tab_bits(fs)
    sysctls = {f"net.ipv4.vs.{name}": fs.read(f"{IPVS_SYSCTL_DIR}/{name}")
               for name in fs.listdir(IPVS_SYSCTL_DIR)}
    return IpvsFacts(loaded=fs.is_dir("/sys/module/ip_vs"),
                     conn_tab_bits=read_value(fs, CONN_TAB_BITS),
                     configured_bits=bits, configured_in=where, sysctls=sysctls)
