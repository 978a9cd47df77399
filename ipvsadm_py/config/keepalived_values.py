"""The values of keepalived.conf: addresses, numbers, local address lists,
forwarding methods, each refused with keepalived's wording.

:class:`Reader` collects the problems as ``FILE:LINE: message``; the
tunnel rules are the YAML path's (:mod:`ipvsadm_py.rules`).
"""

from __future__ import annotations

import dataclasses
import socket

from netaddr import IPAddress

from ipvsadm_py import rules
from ipvsadm_py.config.keepalived_blocks import Node
from ipvsadm_py.model import Forward, TunnelCsum, TunnelType
from ipvsadm_py.rules import Code

MAX_LADDR_RANGE = 1024          # addresses per local_address entry (keepalived's limit)

# keepalived's words for the forwarding methods, both ways.
METHODS = {"NAT": Forward.MASQ, "DR": Forward.ROUTE, "TUN": Forward.TUNNEL,
           "FNAT": Forward.FULLNAT, "FULLNAT": Forward.FULLNAT}
METHOD_WORDS = {Forward.MASQ: "NAT", Forward.LOCAL: "NAT", Forward.ROUTE: "DR",
                Forward.TUNNEL: "TUN", Forward.FULLNAT: "FNAT"}     # (for writing)


# ---------------------------------------------------------------- problems
class Reader:
    """Collects problems, each naming the file and line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def fail(self, line: int, message: str) -> None:
        self.problems.append(f"{self.source}:{line}: {message}")


def parse_address(text: str) -> IPAddress | None:
    """A numeric IPv4 or IPv6 address (keepalived takes no names here)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return IPAddress(int.from_bytes(socket.inet_pton(family, text), "big"),
                             6 if family == socket.AF_INET6 else 4)
        except OSError:
            continue
    return None


def parse_number(text: str, limit: str) -> int | None:
    """A decimal number within ``rules.LIMITS[limit]``, else None."""
    if not text.isdigit():
        return None
    value = int(text)
    return value if rules.in_range(limit, value) else None


def block_words(nodes: list[Node] | None) -> list[tuple[str, int]]:
    """Every word of a value block (``{ a b \\n c }``) with its line."""
    return [(w, n.line) for n in nodes or [] for w in [n.word, *n.args]]


# ---------------------------------------------------------------- local addresses
def _laddr_refusal(addr: IPAddress) -> str | None:
    """Why the kernel would not take this local address (None: it would)."""
    value = int(addr)
    if addr.version == 4:
        checks = [(value >> 24 == 0, "in 0.0.0.0/8"), (value >> 24 == 127, "a loopback address"),
                  (value >> 28 == 0xE, "a multicast address"),
                  (value == 0xFFFFFFFF, "the broadcast address")]
    else:
        checks = [(value == 0, "the unspecified address"), (value == 1, "a loopback address"),
                  (value >> 120 == 0xFF, "a multicast address"),
                  (value >> 32 == 0xFFFF, "an IPv4-mapped address")]
    return next((why for bad, why in checks if bad), None)


def range_end(text: str, start: IPAddress) -> IPAddress:
    """The end of ``start-text``: an address, or the last octet (IPv4,
    decimal) or 16-bit group (IPv6, hex)."""
    if "." in text or ":" in text:
        end = parse_address(text)
        if end is None:
            raise ValueError("the range end is not an address")
        if end.version != start.version:
            raise ValueError("the range ends in the other address family")
        if end.version == 6 and int(end) >> 32 != int(start) >> 32:
            raise ValueError("an IPv6 range may vary the last 32 bits only")
        return end
    bits, base = (8, 10) if start.version == 4 else (16, 16)
    try:
        last = int(text, base)
    except ValueError:
        last = -1
    if not text.isalnum() or not 0 <= last < (1 << bits):
        raise ValueError("the range end is not a number of the last octet (IPv4) or group "
                         "(IPv6, hex)")
    return IPAddress((int(start) >> bits << bits) | last, start.version)


def laddr_entry(word: str) -> list[IPAddress]:
    """The addresses of one local_address entry (``a``, ``a-e``, ``a-b``);
    ValueError says why it is refused."""
    if "/" in word:
        raise ValueError("a prefix is not a local address (write a range a.b.c.d-e)")
    first, dash, last = word.partition("-")
    start = parse_address(first)
    if start is None:
        raise ValueError("not an IPv4 or IPv6 address")
    end = range_end(last, start) if dash else start
    if int(end) < int(start):
        raise ValueError("the range ends before it starts")
    if int(end) - int(start) >= MAX_LADDR_RANGE:
        raise ValueError(f"the range is longer than {MAX_LADDR_RANGE} addresses")
    addrs = [IPAddress(v, start.version) for v in range(int(start), int(end) + 1)]
    why = next((w for w in map(_laddr_refusal, addrs) if w), None)
    if why:
        raise ValueError(why)
    return addrs


def laddr_block(r: Reader, nodes: list[Node] | None, owner: str) -> tuple[list[IPAddress], bool]:
    """The addresses of a local_address block; a device name after an
    address (DPVS) is accepted and not used.  Second value: no error."""
    out: list[IPAddress] = []
    seen: set[IPAddress] = set()
    ok, after_addr = True, False
    for word, line in block_words(nodes):
        if after_addr and word[0].isalpha() and ":" not in word and "/" not in word \
                and len(word) < 16:
            after_addr = False
            continue
        try:
            new = [a for a in laddr_entry(word) if a not in seen]
            seen.update(new)
            out += new
            after_addr = True
        except ValueError as exc:
            r.fail(line, f"{owner}: invalid local address '{word}': {exc}")
            ok, after_addr = False, False
    return out, ok


# ---------------------------------------------------------------- forwarding methods
@dataclasses.dataclass
class Method:
    """A forwarding method with its tunnel options (keepalived's lvs_method)."""

    forward: Forward = Forward.MASQ
    tun_type: TunnelType = TunnelType.IPIP
    tun_port: int = 0
    tun_csum: TunnelCsum = TunnelCsum.NOCSUM
    options: bool = False
    line: int = 0


def lvs_method(r: Reader, node: Node) -> Method | None:
    """``NAT``, ``DR``, ``FNAT``, ``TUN [type ipip|gue|gre] [port N]
    [nocsum|csum|remcsum]``; the tunnel rules are the YAML path's."""
    if not node.args or node.args[0] not in METHODS:
        word = node.args[0] if node.args else ""
        r.fail(node.line, f"{node.word}: unknown [{word}] routing method (NAT, DR, TUN, FNAT)")
        return None
    m = Method(METHODS[node.args[0]], line=node.line)
    words, csums, port_given = node.args[1:], [], False
    while words:
        word = words.pop(0)
        m.options = True
        if word in ("type", "port") and not words:
            r.fail(node.line, f"{node.word}: {word} needs a value")
            return None
        if word == "type":
            value = words.pop(0)
            if value not in ("ipip", "gue", "gre"):
                r.fail(node.line, f"{node.word}: unknown tunnel type {value}")
                return None
            m.tun_type = TunnelType(value)
        elif word == "port":
            value = words.pop(0)
            port = parse_number(value, "tun_port")
            if port is None:
                r.fail(node.line, f"{node.word}: invalid gue tunnel port {value}")
                return None
            m.tun_port, port_given = port, True
        elif word in ("nocsum", "csum", "remcsum"):
            csums.append(TunnelCsum(word))
        else:
            r.fail(node.line, f"{node.word}: invalid tunnel option {word}")
            return None
    faults = rules.tunnel_faults(m.tun_type, port_given, csums)
    if faults:
        r.fail(node.line, f"{node.word}: {_tunnel_fault_text(m.tun_type, faults[0])}")
        return None
    if csums:
        m.tun_csum = csums[0]
    return m


def _tunnel_fault_text(tun_type: TunnelType, fault: rules.Fault) -> str:
    if fault.code == Code.TUN_PORT_MISSING:
        return "gue tunnels require a port"
    if fault.code == Code.TUN_PORT_ILLEGAL:
        return f"{tun_type.value} tunnels cannot have a port"
    if fault.code == Code.TUN_CSUM_CONFLICT:
        return f"{fault.word} and {fault.other} are exclusive"
    return f"{tun_type.value} tunnels do not support the {fault.word} option"

