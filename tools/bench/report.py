"""The benchmark's table (text, Markdown) and chart (PNG) from its JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .runner import KEYS, TARGETS

#: (key, what it is, unit) of the absolute values printed for context.
ABSOLUTE = (
    ("nat_pps", "NAT: UDP packets/s reaching the RS", "pps"),
    ("fnat_pps", "FULLNAT: UDP packets/s reaching the RS (~1k sessions)", "pps"),
    ("fnat_pps_big_table", "FULLNAT: packets/s over ~1M live sessions", "pps"),
    ("fnat_pps_small_flows_big_table", "FULLNAT: packets/s, ~1k flows beside the ~1M table",
     "pps"),
    ("nat_cps", "NAT: new TCP connections/s", "cps"),
    ("fnat_cps", "FULLNAT: new TCP connections/s", "cps"),
    ("syncookie_pps", "syncookies: SYNs answered/s (local listener)", "pps"),
    ("synproxy_pps", "SYNPROXY: SYNs answered/s", "pps"),
    ("ackflood_drop_pps", "SYNPROXY: ACK-flood packets dropped/s", "pps"),
    ("udp_drop_few_pps", "defence_udp_drop: drops/s, 10 services", "pps"),
    ("udp_drop_many_pps", "defence_udp_drop: drops/s, 50,000 services", "pps"),
    ("udp_drop_few_est_pps", "  the same, rate estimation on, 10 services", "pps"),
    ("udp_drop_many_est_pps", "  the same, rate estimation on, 50,000 services", "pps"),
    ("restore_c_s", "C ipvsadm -R of the rules (10,000 in a full run)", "s"),
    ("list_c_s", "C ipvsadm -Ln over them", "s"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def verdict(key: str, value: float | None) -> str:
    if key not in TARGETS:
        return ""
    op, target = TARGETS[key]
    if value is None:
        return ""
    if op == ">=":
        return "met" if value >= target else f"missed ({value / target - 1:+.0%})"
    if op == "<=":
        return "met" if value <= target else f"missed ({value / target - 1:+.0%})"
    return f"source design: ~{target}"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    out = []
    for key in (*KEYS, "bytes_fnat_vs_nat_ratio", "bytes_fnat_vs_nft_ratio"):
        value = result.get(key)
        target = ""
        if key in TARGETS:
            op, t = TARGETS[key]
            target = f"{op} {t}"
        note = verdict(key, value) if value is not None else \
            result.get("reasons", {}).get(key, "")
        if value is not None and key in result.get("reasons", {}):
            note = (note + "; " if note else "") + result["reasons"][key]
        out.append((key, _fmt(value), target, note))
    return out


def table(result: dict[str, Any]) -> str:
    head = (f"kernel {result.get('kernel')}, {result.get('guest_cpus')} CPUs, "
            f"repeats {result.get('repeats')} (medians)"
            + (f", TCG thread={result['guest_tcg_thread']}" if result.get("guest_tcg_thread") else "")
            + (", QUICK (smoke only)" if result.get("quick") else ""))
    lines = [head, ""]
    width = max(len(r[0]) for r in rows(result))
    lines.append(f"{'figure':{width}}  {'value':>10}  {'target':8}  note")
    for key, value, target, note in rows(result):
        lines.append(f"{key:{width}}  {value:>10}  {target:8}  {note}")
    lines += ["", "absolute values (context only: QEMU/TCG on a shared machine)"]
    for key, what, unit in ABSOLUTE:
        if key in result:
            lines.append(f"  {what:58} {_fmt(result.get(key)):>12} {unit}")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    lines = ["| figure | value | target | note |", "|---|---|---|---|"]
    for key, value, target, note in rows(result):
        lines.append(f"| `{key}` | {value} | {target} | {note} |")
    lines += ["", "| absolute value (context only) | value |", "|---|---|"]
    for key, what, unit in ABSOLUTE:
        if key in result:
            lines.append(f"| {what} | {_fmt(result.get(key))} {unit} |")
    return "\n".join(lines)


def chart(result: dict[str, Any], path: Path) -> Path:
    """Horizontal bars of the ratios, each with its target marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in TARGETS]
    values = [result.get(k) for k in keys]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    ys = range(len(keys))
    bars = [v if v is not None else 0 for v in values]
    colors = []
    for k, v in zip(keys, values):
        if v is None:
            colors.append("#cccccc")
            continue
        op, t = TARGETS[k]
        ok = (op == ">=" and v >= t) or (op == "<=" and v <= t) or op == "~"
        colors.append("#4c9a2a" if ok else "#c0392b")
    ax.barh(list(ys), bars, color=colors)
    for y, (k, v) in enumerate(zip(keys, values)):
        t = TARGETS[k][1]
        ax.plot([t, t], [y - 0.4, y + 0.4], color="black", linewidth=2)
        ax.text((v or 0) + 0.02, y, "not available yet" if v is None else f"{v:.2f}",
                va="center", fontsize=8)
    ax.set_yticks(list(ys))
    ax.set_yticklabels(keys, fontsize=8)
    ax.invert_yaxis()
    finite = [v for v in values if v is not None] + [t for _, t in TARGETS.values()]
    ax.set_xlim(0, max(finite) * 1.25)
    ax.set_xscale("symlog", linthresh=2) if max(finite) > 5 else None
    ax.set_xlabel("ratio (black mark: target)")
    ax.set_title(f"lvs-toolkit benchmarks, {result.get('kernel')}"
                 + (" (quick)" if result.get("quick") else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
