"""Client allow and deny lists of virtual services: the vocabulary.

An :class:`AccessList` belongs to a :class:`Target` (one virtual service:
protocol, address and port; or one VIP for every port and protocol) and is
of a :class:`Kind`: a *deny* list drops the clients it holds, an *allow*
list drops every client it does not hold.  Its :class:`Entry` objects are
addresses or prefixes of the target's family, each permanent or with a
timeout (a temporary ban).  The nftables form is made in
:mod:`ipvsadm_py.nft`; this module only names, parses and checks, so both
front ends share one set of rules and words.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
from typing import Iterable, Union

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

PROTOCOLS = ("tcp", "udp", "sctp")
# nftables keeps timeouts in milliseconds in a u64; a year is plenty for a ban.
MAX_TIMEOUT = 365 * 24 * 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd])")


class Kind(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


@dataclasses.dataclass(frozen=True, order=True)
class Target:
    """What a list guards: a service (protocol, address, port), or a VIP
    with every port when ``protocol`` and ``port`` are None."""

    address: str
    protocol: str | None = None
    port: int | None = None

    @property
    def family(self) -> int:
        return ipaddress.ip_address(self.address).version

    def name(self, kind: Kind) -> str:
        """The nftables set and counter name: ``deny_tcp_10.0.0.100_80``,
        ``allow_any_2001:db8::1`` (readable, and read back by :func:`parse_name`)."""
        if self.protocol is None:
            return f"{kind.value}_any_{self.address}"
        return f"{kind.value}_{self.protocol}_{self.address}_{self.port}"

    def sort_key(self) -> tuple[int, int, str, int]:
        """Family, address (as a number), protocol, port."""
        addr = ipaddress.ip_address(self.address)
        return addr.version, int(addr), self.protocol or "", self.port or 0

    def describe(self) -> str:
        if self.protocol is None:
            return f"{self.address} (all ports)"
        host = f"[{self.address}]" if self.family == 6 else self.address
        return f"{self.protocol} {host}:{self.port}"


def make_target(address: str, protocol: str | None = None, port: int | None = None) -> Target:
    """A checked target; ValueError says what is wrong."""
    try:
        addr = ipaddress.ip_address(str(address).strip())
    except ValueError:
        raise ValueError(f"not an IP address: {address!r}") from None
    if (protocol is None) != (port is None):
        raise ValueError("a service needs both protocol and port (or neither, for every "
                         "port of the VIP)")
    if protocol is not None and protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port must be 1-65535, not {port!r}")
    return Target(addr.compressed, protocol, port)


def parse_name(name: str) -> tuple[Kind, Target] | None:
    """The kind and target of a set name made by :meth:`Target.name`;
    None for a name that is not ours."""
    kind_word, _, rest = name.partition("_")
    proto, _, rest = rest.partition("_")
    try:
        kind = Kind(kind_word)
        if proto == "any":
            return kind, make_target(rest)
        address, _, port = rest.rpartition("_")
        return kind, make_target(address, proto, int(port))
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class Entry:
    """An address or prefix; ``timeout`` in seconds (None: permanent);
    ``expires`` is what is left of it, as read from the kernel."""

    network: Network
    timeout: int | None = None
    expires: int | None = None

    def describe(self) -> str:
        text = net_text(self.network)
        if self.timeout is not None:
            text += f" timeout {format_duration(self.timeout)}"
        if self.expires is not None:
            text += f" expires {format_duration(self.expires)}"
        return text


def net_text(net: Network) -> str:
    """``203.0.113.0/24``; a single address without its ``/32``."""
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return net.compressed


def entry_count(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def parse_network(text: str) -> Network:
    """``203.0.113.7``, ``203.0.113.0/24`` or ``2001:db8::/32``; a prefix
    with host bits set is refused (it would match more than it says)."""
    text = str(text).strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            raise ValueError(f"{text} has host bits set (did you mean "
                             f"{ipaddress.ip_network(text, strict=False)}?)") from None
        raise ValueError(f"not an address or prefix: {text!r}") from None


def parse_duration(value: object) -> int:
    """Seconds from ``3600``, ``"90s"``, ``"30m"``, ``"1h"``, ``"2d"`` or
    ``"1h30m"``; 1 s to a year."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value).strip()
        if text.isdigit():
            seconds = int(text)
        elif text and _DURATION.sub("", text) == "":
            seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(text))
        else:
            raise ValueError(f"not a duration: {value!r} (seconds, or like 90s, 30m, 1h, 2d)")
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise ValueError(f"a timeout is 1s to {MAX_TIMEOUT}s, not {seconds}")
    return seconds


def format_duration(seconds: int) -> str:
    """``3600`` as ``1h``, ``5400`` as ``1h30m``."""
    if seconds <= 0:
        return "0s"
    out = ""
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNITS[unit])
        if count:
            out += f"{count}{unit}"
    return out


@dataclasses.dataclass
class AccessList:
    """A list of one kind for one target; entries by network."""

    kind: Kind
    target: Target
    entries: dict[Network, Entry] = dataclasses.field(default_factory=dict)
    packets: int = 0        # dropped by this list (its nftables counter)
    bytes: int = 0
    #: read from a table of the first layout (one interval set per list,
    #: single addresses in it too): the next change moves them
    legacy: bool = dataclasses.field(default=False, compare=False)

    @property
    def name(self) -> str:
        return self.target.name(self.kind)

    @property
    def key(self) -> tuple[Kind, Target]:
        return self.kind, self.target


def entry_faults(target: Target, entries: Iterable[Entry]) -> list[str]:
    """What is wrong with a list's entries: another family than the
    target's, an entry given twice, entries that overlap (nftables refuses
    overlapping intervals, and an overlap hides which entry matched)."""
    faults = []
    family = target.family
    spans = []
    seen: set[Network] = set()
    for entry in entries:
        net = entry.network
        if net.version != family:
            faults.append(f"{net_text(net)} is not IPv{family} like {target.address}")
            continue
        if net in seen:
            faults.append(f"{net_text(net)} is listed twice")
            continue
        seen.add(net)
        spans.append((int(net.network_address), int(net.broadcast_address), net))
    spans.sort(key=lambda s: (s[0], -s[1]))
    widest = None
    for low, high, net in spans:
        if widest is not None and low <= widest[1]:
            faults.append(f"{net_text(net)} overlaps {net_text(widest[2])}")
            continue
        widest = (low, high, net)
    return faults
