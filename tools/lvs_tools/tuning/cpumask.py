"""CPU sets and the two text forms the kernel uses for them.

*Mask form* (``/proc/irq/N/smp_affinity``, ``queues/rx-N/rps_cpus``,
``queues/tx-N/xps_cpus``): hexadecimal, in 32-bit groups separated by commas,
most significant group first.  The kernel prints exactly ``nr_cpu_ids`` bits
(the number of *possible* CPUs): every group has 8 digits except the first,
which has only as many digits as its remaining bits need.  On a 2-CPU machine
"all CPUs" is ``3``; on 36 CPUs it is ``f,ffffffff``; on 130 CPUs
``3,ffffffff,ffffffff,ffffffff,ffffffff``.  On input the kernel also accepts
fewer groups (missing high groups are zero).

*List form* (``smp_affinity_list``, ``/sys/devices/system/cpu/online``):
ascending ranges and single numbers, ``0-3,8,10-11``.
"""

from __future__ import annotations

from typing import Iterable

CpuSet = frozenset[int]
GROUP_BITS = 32


def parse_cpulist(text: str) -> CpuSet:
    """``"0-3,8"`` -> ``{0, 1, 2, 3, 8}``; an empty string is the empty set.

    Raises ValueError for anything that is not a CPU list.
    """
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        first, dash, last = part.partition("-")
        lo, hi = _cpu_number(first), _cpu_number(last) if dash else _cpu_number(first)
        if hi < lo:
            raise ValueError(f"bad CPU range {part!r}")
        cpus.update(range(lo, hi + 1))
    return frozenset(cpus)


def _cpu_number(text: str) -> int:
    if not text.strip().isdigit():
        raise ValueError(f"bad CPU number {text!r}")
    return int(text)


def format_cpulist(cpus: Iterable[int]) -> str:
    """``{0, 1, 2, 3, 8, 10, 11}`` -> ``"0-3,8,10-11"`` (the kernel's list form)."""
    ordered = sorted(set(cpus))
    parts: list[str] = []
    start = prev = None
    for cpu in ordered + [None]:
        if start is not None and (cpu is None or cpu != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if cpu is not None and start is None:
            start = cpu
        prev = cpu
    return ",".join(parts)


def parse_mask(text: str) -> CpuSet:
    """``"1,00000003"`` -> ``{0, 1, 32}``.  Raises ValueError for non-masks."""
    groups = text.strip().split(",")
    cpus: set[int] = set()
    for position, group in enumerate(reversed(groups)):
        if not group or len(group) > 8 or any(c not in "0123456789abcdefABCDEF" for c in group):
            raise ValueError(f"bad CPU mask {text!r}")
        value = int(group, 16)
        cpus.update(position * GROUP_BITS + bit for bit in range(GROUP_BITS)
                    if value >> bit & 1)
    return frozenset(cpus)


def format_mask(cpus: Iterable[int], nbits: int) -> str:
    """The kernel's mask text for ``cpus`` on a machine with ``nbits`` possible CPUs."""
    cpuset = set(cpus)
    if nbits < 1:
        raise ValueError("a CPU mask needs at least one bit")
    if cpuset and (max(cpuset) >= nbits or min(cpuset) < 0):
        raise ValueError(f"CPUs {format_cpulist(cpuset)} do not fit a {nbits}-bit mask")
    value = sum(1 << cpu for cpu in cpuset)
    ngroups = (nbits + GROUP_BITS - 1) // GROUP_BITS
    top_bits = nbits - (ngroups - 1) * GROUP_BITS
    groups = []
    for index in reversed(range(ngroups)):
        width = (top_bits + 3) // 4 if index == ngroups - 1 else GROUP_BITS // 4
        groups.append(f"{value >> (index * GROUP_BITS) & 0xFFFFFFFF:0{width}x}")
    return ",".join(groups)


def describe(cpus: Iterable[int]) -> str:
    """A CPU set for people: ``0-3,8`` or ``none``."""
    text = format_cpulist(cpus)
    return text or "none"
