"""Turn host facts and a profile into a plan: a list of writes with old and new values.

A strategy decides which CPUs serve which queue of a NIC:

``per-cpu``     queue i -> the i-th allowed online CPU (wrapping around);
``numa-local``  the same, over the allowed online CPUs of the NIC's NUMA node;
``explicit``    the profile's ``irq_map`` (a CPU list per queue);
``none``        IRQs and XPS are left alone.

From that map come the IRQ affinities (``/proc/irq/N/smp_affinity``) and the
XPS masks of multi-queue NICs; RPS, RFS, sysctls, NIC features and irqbalance
come from the profile.  Values already right are counted, not planned.
Anything that cannot be written (missing file, read-only value, fixed
feature) is a Problem: a plan with problems is never applied.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from lvs_tools.tuning import cpumask
from lvs_tools.tuning.facts import HostFacts, NicFacts, Value
from lvs_tools.tuning.profile import Profile

MASK_KINDS = frozenset({"irq", "rps", "xps"})
FILE_KINDS = MASK_KINDS | {"rps-flow", "sysctl"}
MODPROBE_HINT = "/etc/modprobe.d/lvs-toolkit-ipvs.conf"


@dataclasses.dataclass(frozen=True)
class Change:
    """One write: ``target`` goes from ``old`` to ``new``.

    ``kind`` is irq, rps, rps-flow, xps, sysctl (``target`` is a file),
    feature (``target`` is ``IFNAME:feature``) or service-active /
    service-enabled (``target`` is a service name).
    """

    kind: str
    target: str
    old: str | None
    new: str
    why: str

    @property
    def channel(self) -> str:
        """file, feature or service: which backend writes it."""
        return "file" if self.kind in FILE_KINDS else self.kind.split("-")[0]


@dataclasses.dataclass(frozen=True)
class Problem:
    """Something the profile wants that cannot be written."""

    target: str
    message: str


@dataclasses.dataclass(frozen=True)
class Note:
    """Information; ``deviation`` marks what an audit must report."""

    message: str
    deviation: bool = False


@dataclasses.dataclass
class Plan:
    profile: str
    strategy: str
    changes: list[Change]
    problems: list[Problem]
    notes: list[Note]
    unchanged: int           # values already as the profile wants

    @property
    def applicable(self) -> bool:
        return not self.problems


def same_value(kind: str, a: str | None, b: str | None) -> bool:
    """Equal as the kernel means them: masks as CPU sets, other values up to spacing."""
    if a is None or b is None:
        return a is b
    if kind in MASK_KINDS:
        try:
            return cpumask.parse_mask(a) == cpumask.parse_mask(b)
        except ValueError:
            return a == b
    return a.split() == b.split()


def pow2_ceil(value: int) -> int:
    """What the kernel stores for RFS table sizes: the next power of two (0 stays 0)."""
    return 0 if value <= 0 else 1 << (value - 1).bit_length()


QueueMap = dict[int, frozenset[int]]


def spread(cpus: tuple[int, ...], nqueues: int) -> QueueMap:
    """Queue -> the CPUs that use it, one queue per CPU in order.

    With at least as many queues as CPUs, queue i gets CPU ``cpus[i % n]``;
    with fewer, queue i gets every CPU at positions i, i + nqueues, ...
    (what XPS and RPS need: every CPU belongs to some queue).
    """
    pairs = [(k % nqueues, cpus[k % len(cpus)]) for k in range(max(len(cpus), nqueues))]
    return {q: frozenset(c for qq, c in pairs if qq == q) for q in range(nqueues)}


def home_cpus(cpus: tuple[int, ...], nqueues: int) -> QueueMap:
    """Queue -> the one CPU its IRQ is pinned to: queue i on ``cpus[i % n]``."""
    return {q: frozenset({cpus[q % len(cpus)]}) for q in range(nqueues)}


def onoff(flag: bool) -> str:
    return "on" if flag else "off"


class _Builder:
    """Collects changes, problems and notes while walking the facts."""

    def __init__(self, facts: HostFacts, profile: Profile) -> None:
        self.facts, self.profile = facts, profile
        self.changes: list[Change] = []
        self.problems: list[Problem] = []
        self.notes: list[Note] = []
        self.unchanged = 0

    # --- primitives -------------------------------------------------------
    def note(self, message: str, deviation: bool = False) -> None:
        self.notes.append(Note(message, deviation))

    def problem(self, target: str, message: str) -> None:
        self.problems.append(Problem(target, message))

    def want(self, kind: str, target: str, old: str | None, new: str, why: str) -> None:
        if same_value(kind, old, new):
            self.unchanged += 1
        else:
            self.changes.append(Change(kind, target, old, new, why))

    def file(self, kind: str, value: Value, new: str, why: str) -> None:
        """Plan a file write, or a problem if the file is missing or read-only."""
        if value.missing:
            self.problem(value.path, f"missing (wanted for {why})")
        elif same_value(kind, value.text, new):
            self.unchanged += 1
        elif not value.writable:
            self.problem(value.path, f"read-only: is {value.text!r}, the profile wants "
                                     f"{new!r} ({why})")
        else:
            self.changes.append(Change(kind, value.path, value.text, new, why))

    def mask(self, cpus: Iterable[int]) -> str:
        return cpumask.format_mask(cpus, self.facts.cpus.possible)

    # --- CPUs -------------------------------------------------------------
    def allowed(self) -> tuple[int, ...]:
        online = self.facts.cpus.online
        if self.profile.cpus is None:
            return online
        skipped = self.profile.cpus - set(online)
        if skipped:
            self.note(f"CPUs {cpumask.describe(skipped)} of the profile are offline or "
                      f"absent: skipped")
        return tuple(c for c in online if c in self.profile.cpus)

    def nic_cpus(self, nic: NicFacts, allowed: tuple[int, ...]) -> tuple[int, ...]:
        """The CPUs the strategy gives a NIC, in order."""
        strategy = self.profile.strategy
        if strategy == "numa-local":
            node = nic.numa_node
            if node is None or node not in self.facts.cpus.nodes:
                self.note(f"{nic.name}: NUMA node unknown; using every allowed CPU")
                return allowed
            return tuple(c for c in self.facts.cpus.node_cpus(node) if c in allowed)
        if strategy == "explicit":
            entries = self.profile.irq_map.get(nic.name, ())
            return tuple(sorted(set().union(*entries) & set(self.facts.cpus.online)))
        return allowed

    def queue_maps(self, nic: NicFacts,
                   cpus: tuple[int, ...]) -> tuple[QueueMap, QueueMap] | None:
        """(IRQ map, XPS map) of a NIC, or None (strategy none, or a problem)."""
        if self.profile.strategy == "none":
            return None
        if self.profile.strategy == "explicit":
            explicit = self.explicit_map(nic)
            return None if explicit is None else (explicit, explicit)
        if not cpus:
            self.problem(nic.name, f"strategy {self.profile.strategy} leaves no online "
                                   f"CPU for {nic.name}")
            return None
        return home_cpus(cpus, nic.queue_count), spread(cpus, nic.queue_count)

    def explicit_map(self, nic: NicFacts) -> QueueMap | None:
        entries = self.profile.irq_map.get(nic.name)
        if entries is None:
            self.problem(nic.name, f"strategy explicit: irq_map has no entry for {nic.name}")
            return None
        if len(entries) < nic.queue_count:
            self.problem(nic.name, f"strategy explicit: irq_map.{nic.name} names "
                                   f"{len(entries)} queues, {nic.name} has {nic.queue_count}")
            return None
        online = set(self.facts.cpus.online)
        result = {}
        for queue, cpus in enumerate(entries):
            if cpus - online:
                self.note(f"{nic.name} queue {queue}: CPUs {cpumask.describe(cpus - online)} "
                          f"are offline: skipped")
            if not cpus & online:
                self.problem(nic.name, f"irq_map.{nic.name}[{queue}]: no online CPU")
                return None
            result[queue] = frozenset(cpus & online)
        return result

    # --- per NIC ----------------------------------------------------------
    def nic(self, nic: NicFacts, allowed: tuple[int, ...]) -> None:
        for text in nic.notes:
            self.note(text)
        cpus = self.nic_cpus(nic, allowed)
        maps = self.queue_maps(nic, cpus)
        if maps is not None:
            self.irqs(nic, maps[0])
            self.xps(nic, maps[1])
        self.rps(nic, cpus or allowed)
        self.rfs_queues(nic)
        self.offloads(nic)

    def irqs(self, nic: NicFacts, qmap: QueueMap) -> None:
        if not nic.queue_irqs:
            if nic.device:
                self.note(f"{nic.name}: no queue IRQs found (driver {nic.driver}); "
                          f"IRQ affinity not planned")
            return
        for irq in nic.queue_irqs:
            cpus = qmap[irq.queue % len(qmap)]
            self.file("irq", irq.affinity, self.mask(cpus),
                      f"{nic.name} queue {irq.queue} {irq.direction} -> CPU "
                      f"{cpumask.describe(cpus)}")

    def xps(self, nic: NicFacts, qmap: QueueMap) -> None:
        if not self.profile.xps or len(nic.tx) < 2:
            return
        for queue in nic.tx:
            cpus = qmap[queue.index % len(qmap)]
            self.file("xps", queue.xps_cpus, self.mask(cpus),
                      f"{nic.name} tx-{queue.index} sent from CPU {cpumask.describe(cpus)}")

    def rps(self, nic: NicFacts, cpus: tuple[int, ...]) -> None:
        policy = self.profile.rps
        if policy == "keep":
            return
        spread_all = policy == "all" or (policy == "single-queue" and len(nic.rx) == 1)
        for queue in nic.rx:
            wanted = cpus if spread_all else ()
            why = (f"{nic.name} rx-{queue.index} spread over CPU {cpumask.describe(wanted)}"
                   if wanted else f"{nic.name} rx-{queue.index}: no RPS ({policy})")
            self.file("rps", queue.rps_cpus, self.mask(wanted), why)

    def rfs_queues(self, nic: NicFacts) -> None:
        rfs = self.profile.rfs
        if rfs is None or not nic.rx:
            return
        count = rfs.flow_cnt if rfs.flow_cnt is not None else \
            rfs.sock_flow_entries // len(nic.rx)
        for queue in nic.rx:
            self.file("rps-flow", queue.rps_flow_cnt, str(pow2_ceil(count)),
                      f"{nic.name} rx-{queue.index} RFS flow table")

    def offloads(self, nic: NicFacts) -> None:
        for name, wanted in self.profile.offloads.items():
            target = f"{nic.name}:{name}"
            feature = nic.features.get(name)
            if feature is None:
                if nic.features:
                    self.note(f"{nic.name} has no feature {name}: nothing to switch")
                else:
                    self.problem(target, "the NIC's features cannot be read")
            elif feature.enabled == wanted:
                self.unchanged += 1
            elif not feature.changeable:
                self.problem(target, f"{onoff(feature.enabled)} and fixed by the driver; "
                                     f"the profile wants {onoff(wanted)}")
            else:
                self.changes.append(Change("feature", target, onoff(feature.enabled),
                                           onoff(wanted), f"profile offloads {name}"))

    # --- host-wide --------------------------------------------------------
    def irqbalance(self) -> None:
        state = self.facts.irqbalance
        if self.profile.irqbalance != "off" or not (state.installed or state.active):
            return
        why = "irqbalance would rewrite the IRQ affinities"
        if (state.active or state.enabled) and not state.managed:
            if state.active:
                self.problem("irqbalance", "runs, but not under systemd: stop it by hand")
            return
        self.want("service-active", "irqbalance", "active" if state.active else "inactive",
                  "inactive", why)
        self.want("service-enabled", "irqbalance",
                  "enabled" if state.enabled else "disabled", "disabled", why)

    def sysctls(self) -> None:
        for key, wanted in self.profile.sysctls.items():
            value = self.facts.sysctls[key]
            if value.missing and key.startswith("net.ipv4.vs."):
                self.problem(value.path, "missing: this ip_vs has no such sysctl"
                             if self.facts.ipvs.loaded else
                             "missing: ip_vs is not loaded (modprobe ip_vs)")
                continue
            self.file("sysctl", value, wanted, f"sysctl {key}")
        rfs = self.profile.rfs
        if rfs is not None:
            self.file("sysctl", self.facts.sysctls["net.core.rps_sock_flow_entries"],
                      str(pow2_ceil(rfs.sock_flow_entries)), "RFS socket flow table")

    def ipvs(self) -> None:
        wanted = self.profile.conn_tab_bits
        if wanted is None:
            return
        ipvs = self.facts.ipvs
        fix = (f"put \"options ip_vs conn_tab_bits={wanted}\" in {MODPROBE_HINT} "
               f"and reload ip_vs")
        if ipvs.loaded and ipvs.conn_tab_bits.text and ipvs.conn_tab_bits.text.isdigit():
            live = int(ipvs.conn_tab_bits.text)
            if live == wanted:
                self.unchanged += 1
            else:
                self.note(f"ip_vs conn_tab_bits is {live} ({1 << live} buckets), the profile "
                          f"wants {wanted}: a module parameter: {fix}", deviation=True)
        elif ipvs.configured_bits == wanted:
            self.unchanged += 1
        else:
            where = (f"{ipvs.configured_in} sets {ipvs.configured_bits}"
                     if ipvs.configured_in else "nothing sets it")
            self.note(f"ip_vs is not loaded and {where}; the profile wants conn_tab_bits="
                      f"{wanted}: {fix}", deviation=True)


def selected_nics(facts: HostFacts, profile: Profile, builder: _Builder) -> list[NicFacts]:
    """The profile's interfaces; auto means every NIC with a device."""
    if profile.interfaces is None:
        return [nic for nic in facts.nics.values() if nic.device]
    found = []
    for name in profile.interfaces:
        if name in facts.nics:
            found.append(facts.nics[name])
        else:
            builder.problem(f"/sys/class/net/{name}", "no such interface")
    return found


def make_plan(facts: HostFacts, profile: Profile) -> Plan:
    """The writes that bring the host to the profile, in the order to apply them:
    services (irqbalance stops before IRQs are pinned), sysctls, then each NIC."""
    builder = _Builder(facts, profile)
    builder.irqbalance()
    builder.sysctls()
    allowed = builder.allowed()
    if not allowed:
        builder.problem("cpus", "the profile's cpus leave no online CPU")
    for nic in selected_nics(facts, profile, builder):
        builder.nic(nic, allowed)
    builder.ipvs()
    return Plan(profile.name, profile.strategy, builder.changes, builder.problems,
                builder.notes, builder.unchanged)
