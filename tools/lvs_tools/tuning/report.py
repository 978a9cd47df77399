"""Text for people: the host's facts, a plan as a table, results.

Nothing else in the package prints; the CLI prints what these return.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from lvs_tools.tuning import cpumask
from lvs_tools.tuning.apply import RevertResult
from lvs_tools.tuning.audit import Deviation, show_value
from lvs_tools.tuning.facts import HostFacts, NicFacts, Value
from lvs_tools.tuning.plan import Change, Plan

SHOWN_FEATURES = ("rx-gro", "rx-lro", "rx-gro-hw")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the last column is not padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def plan_table(plan: Plan) -> str:
    """The plan as operators read it: one line per write, then problems and notes."""
    out = [f"profile {plan.profile}, strategy {plan.strategy}: {len(plan.changes)} "
           f"change(s), {plan.unchanged} value(s) already right"]
    if plan.changes:
        rows = [(c.kind, c.target, show_value(c.kind, c.old), show_value(c.kind, c.new), c.why)
                for c in plan.changes]
        out += ["", table(("KIND", "TARGET", "NOW", "NEW", "WHY"), rows)]
    if plan.problems:
        out += ["", f"PROBLEMS ({len(plan.problems)}; the plan cannot be applied):"]
        out += [f"  {p.target}: {p.message}" for p in plan.problems]
    if plan.notes:
        out += ["", "NOTES:"]
        out += [f"  {'[deviation] ' if n.deviation else ''}{n.message}" for n in plan.notes]
    return "\n".join(out)


def applied(changes: Sequence[Change], state_path: str) -> str:
    if not changes:
        return "nothing to change: the host already matches the profile"
    return f"applied {len(changes)} change(s); old values saved in {state_path}"


def reverted(result: RevertResult) -> str:
    lines = [f"restored {len(result.restored)} value(s)"]
    lines += [f"  {e['target']}: back to {show_value(e['kind'], e['old'])}"
              for e in result.restored]
    if result.skipped:
        lines.append(f"skipped {len(result.skipped)}:")
        lines += [f"  {s}" for s in result.skipped]
    if result.errors:
        lines.append(f"FAILED {len(result.errors)} (kept in the state file):")
        lines += [f"  {e}" for e in result.errors]
    return "\n".join(lines)


def audit_report(found: Sequence[Deviation], profile: str) -> str:
    if not found:
        return f"OK: the host matches profile {profile}"
    return "\n".join([f"{len(found)} deviation(s) from profile {profile}:",
                      *(f"  {d}" for d in found)])


def _value(value: Value) -> str:
    return "(missing)" if value.text is None else value.text


def _nic_lines(nic: NicFacts) -> list[str]:
    where = f"node {nic.numa_node}" if nic.numa_node is not None else "node ?"
    kind = f"driver {nic.driver}, {where}" if nic.device else "virtual (no device)"
    lines = [f"{nic.name}: {kind}, {len(nic.rx)} rx / {len(nic.tx)} tx queues, "
             f"{len(nic.queue_irqs)} queue IRQs"]
    for irq in nic.irqs:
        queue = f"queue {irq.queue} {irq.direction}" if irq.queue is not None else "other"
        lines.append(f"  IRQ {irq.number:<5} {irq.name or '(no name)':<28} {queue:<14} "
                     f"CPUs {_value(irq.affinity_list)} (mask {_value(irq.affinity)})")
    for q in nic.rx:
        lines.append(f"  rx-{q.index}: rps_cpus {show_value('rps', q.rps_cpus.text)}, "
                     f"rps_flow_cnt {_value(q.rps_flow_cnt)}")
    for t in nic.tx:
        if t.xps_cpus.text is not None:
            lines.append(f"  tx-{t.index}: xps_cpus {show_value('xps', t.xps_cpus.text)}")
    shown = [f"{n} {'on' if f.enabled else 'off'}{'' if f.changeable else ' [fixed]'}"
             for n, f in nic.features.items() if n in SHOWN_FEATURES]
    if shown:
        lines.append("  features: " + ", ".join(shown))
    lines += [f"  note: {n}" for n in nic.notes]
    return lines


def facts_text(facts: HostFacts) -> str:
    cpus = facts.cpus
    out = [f"CPUs: {len(cpus.online)} online ({cpumask.describe(cpus.online)}) of "
           f"{cpus.possible} possible"]
    out += [f"  node {n}: CPUs {cpumask.describe(c)}" for n, c in sorted(cpus.nodes.items())]
    st = facts.irqbalance
    out.append(f"irqbalance: {'installed' if st.installed else 'not installed'}, "
               f"{'running' if st.active else 'not running'}, enabled={st.enabled}")
    for nic in facts.nics.values():
        out += _nic_lines(nic)
    out.append("sysctls:")
    out += [f"  {k} = {_value(v)}" for k, v in facts.sysctls.items()]
    ipvs = facts.ipvs
    out.append(f"ip_vs: {'loaded' if ipvs.loaded else 'not loaded'}, conn_tab_bits "
               f"{_value(ipvs.conn_tab_bits)}, configured {ipvs.configured_bits} "
               f"({ipvs.configured_in or 'no modprobe.d option'})")
    out += [f"  {k} = {v}" for k, v in ipvs.sysctls.items()]
    return "\n".join(out)


def jsonable(obj: Any) -> Any:
    """Dataclasses, sets and tuples as plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj
