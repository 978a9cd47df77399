"""Reading composed YAML nodes with their line numbers: each reader checks
a node's type and range and, when it is wrong, notes ``FILE:LINE: path:
message`` and goes on, so that a file's every problem is reported at once.
Address lists (an address, a range, a network) are read here too.
"""

from __future__ import annotations

import socket
from typing import Any, Iterable

import yaml
from netaddr import AddrFormatError, IPAddress, IPNetwork, IPRange

from ipvsadm_py import rules

MAX_RANGE = 65536


def enum_names(enum_type: type) -> list[str]:
    """The names of an enum's members, those that can be configured."""
    return [m.value for m in enum_type if m.value != "unknown"]


class Checker:
    """Walks composed YAML nodes, collecting problems with line numbers."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, node: yaml.Node | None, path: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{self.source}:{line}: {path}: {message}")

    def mapping(self, node: yaml.Node, path: str, allowed: Iterable[str]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, "must be a mapping")
            return {}
        out: dict[str, yaml.Node] = {}
        allowed = set(allowed)
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                self.fail(key_node, path, f"unknown key {key!r} (allowed: "
                          f"{', '.join(sorted(allowed))})")
                continue
            if key in out:
                self.fail(key_node, path, f"duplicate key {key!r}")
            out[key] = value
        return out

    def seq(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, "must be a list")
            return []
        return list(node.value)

    def scalar(self, node: yaml.Node, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, "must be a single value")
            return None
        return yaml.safe_load(yaml.serialize(node))

    def integer(self, node: yaml.Node, path: str, limit: str) -> int | None:
        """An integer within ``rules.LIMITS[limit]``."""
        return self.integer_in(node, path, *rules.LIMITS[limit])

    def integer_in(self, node: yaml.Node, path: str, low: int, high: int) -> int | None:
        value = self.scalar(node, path)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            if value is not None or isinstance(node, yaml.ScalarNode):
                self.fail(node, path, f"must be an integer {low}-{high}, not {value!r}")
            return None
        return value

    def choice(self, node: yaml.Node, path: str, choices: Iterable[str]) -> str | None:
        value = self.scalar(node, path)
        choices = list(choices)
        if value not in choices:
            self.fail(node, path, f"must be one of {', '.join(choices)}, not {value!r}")
            return None
        return value

    def boolean(self, node: yaml.Node, path: str) -> bool | None:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            self.fail(node, path, f"must be true or false, not {value!r}")
            return None
        return value

    def address(self, node: yaml.Node, path: str) -> IPAddress | None:
        value = self.scalar(node, path)
        if value is None or not strict_ip(str(value)):
            self.fail(node, path, f"not an IP address: {value!r}")
            return None
        return IPAddress(str(value))


def strict_ip(text: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
            return True
        except OSError:
            continue
    return False


def expand_addresses(text: str) -> list[IPAddress]:
    """``10.0.3.1``, ``10.0.3.10-10.0.3.20`` or ``10.0.4.0/30`` as addresses."""
    text = str(text).strip()
    if "-" in text:
        first, _, last = text.partition("-")
        rng = IPRange(first.strip(), last.strip())
        if rng.size > MAX_RANGE:
            raise ValueError(f"range of {rng.size} addresses (at most {MAX_RANGE})")
        return list(rng)
    if "/" in text:
        net = IPNetwork(text)
        if net.size > MAX_RANGE:
            raise ValueError(f"network of {net.size} addresses (at most {MAX_RANGE})")
        return list(net)
    if not strict_ip(text):
        raise ValueError("not an address, range or network")
    return [IPAddress(text)]


def address_list(c: Checker, node: yaml.Node, path: str) -> list[IPAddress]:
    out: list[IPAddress] = []
    for index, item in enumerate(c.seq(node, path)):
        value = c.scalar(item, f"{path}[{index}]")
        try:
            out += expand_addresses(value)
        except (AddrFormatError, ValueError, TypeError) as exc:
            c.fail(item, f"{path}[{index}]", f"bad address or range {value!r}: {exc}")
    return out
