"""Compare the host with a profile: every difference is a deviation.

An audit is a plan read the other way round: each planned change is a value
that differs from the profile, each problem something the profile wants
that the host cannot give, and some notes (the IPVS table size) are
deviations too.  ``lvs-tune audit`` exits 1 when the list is not empty, so
monitoring can run it.
"""

from __future__ import annotations

import dataclasses

from lvs_tools.tuning import cpumask
from lvs_tools.tuning.plan import MASK_KINDS, Plan


@dataclasses.dataclass(frozen=True)
class Deviation:
    target: str
    message: str

    def __str__(self) -> str:
        return f"{self.target}: {self.message}"


def show_value(kind: str, text: str | None) -> str:
    """A value for people: masks get their CPU list, ``0,00000003 (CPU 0-1)``."""
    if text is None:
        return "(missing)"
    if kind in MASK_KINDS:
        try:
            return f"{text} (CPU {cpumask.describe(cpumask.parse_mask(text))})"
        except ValueError:
            return text
    return text


def deviations(plan: Plan) -> list[Deviation]:
    """Everything in which the host differs from the plan's profile."""
    found = [Deviation(c.target, f"is {show_value(c.kind, c.old)}, profile wants "
                                 f"{show_value(c.kind, c.new)} ({c.why})")
             for c in plan.changes]
    found += [Deviation(p.target, p.message) for p in plan.problems]
    found += [Deviation("note", n.message) for n in plan.notes if n.deviation]
    return found
