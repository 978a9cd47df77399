"""The text exposition format (Prometheus 0.0.4) of a scrape, written
directly from the collected samples.

Why not ``prometheus_client.generate_latest``: for every sample it builds a
label dictionary, sorts it, validates and escapes each label name again
(four to five labels on each of the ~54,000 samples of 1,000 services x 4
real servers), which was most of a 14 s scrape in the emulated guest
(docs/monitoring/README.md, "Cost of a scrape").  Here a family's label
names are checked, sorted and written once; per sample only the values are
escaped and joined.  The output is byte for byte what ``generate_latest``
writes for the same families (tests/unit/test_exporter.py compares them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.utils import floatToGoString

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape_value(value: str) -> str:
    """A label value as the format wants it (backslash, newline, quote)."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
    return value


def escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def family_lines(name: str, kind: str, help_text: str, label_names: Sequence[str],
                 samples: Iterable[tuple[tuple[str, ...], float]],
                 cache: dict | None = None) -> list[str]:
    """The lines of one family: HELP, TYPE, then one line per sample
    (``label_names`` in the order of each sample's values; written sorted,
    as Prometheus' own client does).  ``cache``, shared by the families of
    one scrape, keeps each label set's text and each value's: a real server's
    labels recur in a dozen families, and most values are small integers."""
    cache = {} if cache is None else cache
    order = tuple(sorted(range(len(label_names)), key=lambda i: label_names[i]))
    pre = [f'{label_names[i]}="' for i in order]
    out = [f"# HELP {name} {escape_help(help_text)}\n", f"# TYPE {name} {kind}\n"]
    for values, value in samples:
        key = (order, values)
        labels = cache.get(key)
        if labels is None:
            labels = cache[key] = ("{" + ",".join(
                [p + escape_value(values[i]) + '"' for p, i in zip(pre, order)]) + "}"
                if order else "")
        number = cache.get(value)
        if number is None:
            number = cache[value] = floatToGoString(value)
        out.append(f"{name}{labels} {number}\n")
    return out
