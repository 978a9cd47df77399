"""Did a measuring window measure the balancer, or the generator?

A rate says something about the balancer only when the balancer was the
limit.  On the shared, emulated machine the generator can fall behind (a
noisy host, a vCPU descheduled), and then the balancer forwards everything
it is offered: two such windows compare two generators, not two balancers.
So every window records the evidence, and a figure is made only of
windows that show the balancer saturated:

- **open loop** (pktgen's UDP, the SYN and ACK floods): the rate offered to
  the balancer is clearly above what it delivered (``OFFERED_EXCESS``), or
  its receive backlog dropped a share of the offered packets
  (``DROP_SHARE``);
- **closed loop** (connections and request/response, where a generator
  waits for the answer and offers no more than is delivered): the CPU that
  does the balancer's work was busy (``BUSY``) for the window.

The busy CPU is evidence for an open-loop window too.

``paired_figure`` takes the windows of a comparison in the order they ran
(feature, baseline, feature, baseline, ...), keeps the pairs whose two
windows were both saturated, and returns the median of their ratios; when
fewer than half of the pairs are left, the figure is None and the reason
names what the windows showed.  ``median_figure`` does the same for runs
that could not be interleaved (a median of each side's saturated windows).
"""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

#: Offered at least this much above delivered: the balancer did not keep up.
OFFERED_EXCESS = 1.10
#: Or this share of the offered packets dropped at the receive backlog.
DROP_SHARE = 0.05
#: The measured CPU's share of non-idle time that counts as fully busy
#: (the guest's /proc/stat is sampled at the tick: 100 % is rarely seen).
BUSY = 0.90


@dataclasses.dataclass(frozen=True)
class Window:
    """One measuring window: what the figure uses and the evidence."""

    rate: float                    # delivered (per second): what the figure uses
    offered: float | None = None   # open loop: offered to the balancer, per second
    dropped: float = 0.0           # per second, at the balancer's receive backlog
    busy: float | None = None      # the measured CPU's non-idle share, 0..1

    @property
    def taken(self) -> float | None:
        """Open loop: what the balancer took (offered, less what its backlog
        refused), per second."""
        return None if self.offered is None else self.offered - self.dropped

    def verdict(self) -> str | None:
        """None when the window shows the balancer saturated, else why not."""
        if self.offered is not None:
            if self.offered >= OFFERED_EXCESS * self.rate:
                return None
            if self.offered > 0 and self.dropped >= DROP_SHARE * self.offered:
                return None
        if self.busy is not None and self.busy >= BUSY:
            return None
        return self.describe()

    def describe(self) -> str:
        parts = [f"delivered {self.rate:.0f}/s"]
        if self.offered is not None:
            parts.append(f"offered {self.offered:.0f}/s")
            parts.append(f"backlog drops {self.dropped:.0f}/s")
        if self.busy is not None:
            parts.append(f"measured CPU {100 * self.busy:.0f} % busy")
        return ", ".join(parts)

    @classmethod
    def of(cls, record: dict[str, Any]) -> "Window":
        """The window an :meth:`as_json` record describes."""
        return cls(rate=record["rate"], offered=record.get("offered"),
                   dropped=record.get("dropped", 0.0), busy=record.get("busy"))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rate": round(self.rate, 1)}
        if self.offered is not None:
            out["offered"] = round(self.offered, 1)
            out["dropped"] = round(self.dropped, 1)
        if self.busy is not None:
            out["busy"] = round(self.busy, 3)
        out["saturated"] = self.verdict() is None
        return out


def paired_figure(nums: list[Window], dens: list[Window]) -> tuple[float | None, str | None]:
    """The median ratio of the saturated pairs, or None and the reason.

    Pairs are (nums[i], dens[i]), measured back to back.  A pair counts when
    both of its windows were saturated and the baseline's rate is not zero;
    at least half of the pairs (and at least one) must count."""
    pairs = list(zip(nums, dens))
    if not pairs:
        return None, "no windows were measured"
    kept = [n.rate / d.rate for n, d in pairs
            if d.rate and n.verdict() is None and d.verdict() is None]
    if kept and 2 * len(kept) >= len(pairs):
        return statistics.median(kept), None
    unsaturated = [w.verdict() for pair in pairs for w in pair if w.verdict() is not None]
    shown = "; ".join(unsaturated[:4]) + ("; ..." if len(unsaturated) > 4 else "")
    return None, (f"not saturated: {len(pairs) - len(kept)} of {len(pairs)} pairs had a "
                  f"window where the balancer was not the limit ({shown})")


def median_figure(nums: list[Window], dens: list[Window]) -> tuple[float | None, str | None]:
    """For runs that could not be interleaved (a table that takes minutes
    to change, a module loaded once): the median of the saturated windows
    of one over that of the other; None and the reason unless at least
    half of each side's windows (and one) were saturated."""
    if not nums or not dens:
        return None, "no windows were measured"
    hot = [[w.rate for w in side if w.verdict() is None] for side in (nums, dens)]
    if all(vals and 2 * len(vals) >= len(side) for vals, side in zip(hot, (nums, dens))):
        if statistics.median(hot[1]):
            return statistics.median(hot[0]) / statistics.median(hot[1]), None
    cold = [w.verdict() for side in (nums, dens) for w in side if w.verdict() is not None]
    shown = "; ".join(cold[:4]) + ("; ..." if len(cold) > 4 else "")
    return None, (f"not saturated: {len(cold)} of {len(nums) + len(dens)} windows, "
                  f"where the balancer was not the limit ({shown})")


def lower_bound(nums: list[Window], dens: list[Window]) -> float | None:
    """What a comparison proves when only its baseline was saturated.

    A window that was not saturated delivered less than its balancer could
    have: its capacity is at least that rate.  So over the pairs whose
    baseline window was saturated, the median of the ratios is a lower
    bound of the capacity ratio (None when no such pair exists).  Only
    meaningful for ``nums / dens`` with ``nums`` the one that may have idled
    (e.g. FULLNAT against a saturated HAProxy)."""
    kept = [n.rate / d.rate for n, d in zip(nums, dens) if d.rate and d.verdict() is None]
    return statistics.median(kept) if kept else None


def cost_ratio(nums: list[Window], dens: list[Window]) -> float | None:
    """The capacity ratio the measured CPU's time suggests, saturated or not.

    A window's cost is the measured CPU's busy share per unit of rate; the
    capacity ratio of ``nums`` to ``dens`` is then the baseline's cost over
    the feature's, median over the pairs.  An estimate, not a figure: it
    assumes the cost grows linearly with the rate and that the measured
    CPU did only the balancer's work (``--cpus 3``).  None without CPU
    readings."""
    pairs = [(d.busy / d.rate) / (n.busy / n.rate) for n, d in zip(nums, dens)
             if n.rate and d.rate and n.busy and d.busy]
    return statistics.median(pairs) if pairs else None


def busy_share(before: list[int], after: list[int]) -> float | None:
    """Non-idle share of one CPU between two /proc/stat readings (user nice
    system idle iowait irq softirq steal); None when no tick passed.  Time
    stolen by the host counts as idle: the CPU did not work then."""
    d = [a - b for a, b in zip(after[:8], before[:8])]
    total = sum(d)
    if total <= 0:
        return None
    return 1 - (d[3] + d[4] + d[7]) / total
