"""Values on ipvsadm's command line: numbers, host[:port], addresses."""

from __future__ import annotations

import functools
import re
import socket

from ipvsadm_py.model import Protocol

_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def number(text: str | None, low: int, high: int) -> int | None:
    """C's ``string_to_number``: a whole decimal in [low, high], else None."""
    if text is None:
        return None
    match = _NUMBER.fullmatch(text)
    if not match:
        return None
    value = int(match.group(1))
    if value < -(1 << 63) or value >= 1 << 63:
        return None
    return value if low <= value <= high else None


def port(text: str, protocol: int) -> int | None:
    """A port by number or by service name (of the protocol)."""
    value = number(text, 0, 65535)
    if value is not None:
        return value
    try:
        name = Protocol(protocol).name.lower()
    except ValueError:
        return None
    try:
        return socket.getservbyname(text, name)
    except OSError:
        return None


def ipv4(host: str) -> bytes | None:
    """4 packed bytes of an IPv4 address (inet_aton's forms) or host name."""
    try:
        return socket.inet_aton(host)
    except OSError:
        pass
    try:
        return socket.inet_aton(socket.gethostbyname(host))
    except (OSError, UnicodeError):
        return None


def address(text: str) -> bytes | None:
    """4 or 16 packed bytes of an IPv4 or IPv6 address (no names)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, text)
        except OSError:
            continue
    return None


@functools.lru_cache(maxsize=4096)
def parse_hostport(text: str, protocol: int) -> tuple[bytes, int | None] | None:
    """ipvsadm's ``parse_service``: ``[v6]:port``, ``v6``, ``v4[:port]``,
    ``host[:port]`` (IPv4 names); ports by number or service name.  The
    address comes packed (4 or 16 bytes); None on error; the port is None
    if absent.  Remembered for the life of the process (a restore file
    names the same virtual service on each of its real servers' lines), host
    and service names included: unlike C ipvsadm, a restore looks each name
    up once."""
    if not text or text.isdigit():
        return None
    port_text = None
    host = text
    if text.startswith("["):
        inner, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return None
        host, port_text = inner, rest[1:]
        try:
            addr = socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            return None
    else:
        try:
            return socket.inet_pton(socket.AF_INET6, text), None
        except OSError:
            pass
        if ":" in text:
            host, _, port_text = text.rpartition(":")
        found = ipv4(host)
        if found is None:
            return None
        addr = found
    if port_text is None:
        return addr, None
    value = port(port_text, protocol)
    return None if value is None else (addr, value)
