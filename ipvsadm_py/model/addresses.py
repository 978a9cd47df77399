"""Addresses of the vocabulary: socket families, packed bytes, their text.

The ``addr`` of a Service, Dest or LocalAddress is kept packed (4 or 16
bytes, see :class:`AddressField`) and becomes a ``netaddr.IPAddress`` when
read, so that listing and restoring never import netaddr (about 50
modules).
"""

from __future__ import annotations

import socket

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import Any

    from netaddr import IPAddress

AF_INET, AF_INET6 = int(socket.AF_INET), int(socket.AF_INET6)


def family_of(af: int) -> int:
    """4 or 6 from a socket address family."""
    return 6 if af == AF_INET6 else 4


def af_of(version: int) -> int:
    """The socket address family of IP version 4 or 6."""
    return AF_INET6 if version == 6 else AF_INET


def af_of_packed(raw: bytes) -> int:
    """The address family of 4 (IPv4) or 16 (IPv6) packed bytes."""
    return AF_INET6 if len(raw) == 16 else AF_INET


def ip(raw: bytes) -> IPAddress:
    """A ``netaddr.IPAddress`` from 4 (IPv4) or 16 (IPv6) packed bytes."""
    from netaddr import IPAddress

    return IPAddress(int.from_bytes(raw, "big"), 6 if len(raw) == 16 else 4)


def packed_of(addr: IPAddress | bytes) -> bytes:
    """4 or 16 bytes of an address given packed or as an object with
    ``packed`` (netaddr's, or the standard library's ``ipaddress``)."""
    return addr if isinstance(addr, bytes) else addr.packed


def addr_text(addr: IPAddress | bytes) -> str:
    """The address as ``inet_ntop`` writes it (what ipvsadm prints)."""
    raw = packed_of(addr)
    return socket.inet_ntop(af_of_packed(raw), raw)


def hostport(addr: IPAddress | bytes, port: int) -> str:
    """``10.0.0.1:80`` or ``[2001:db8::1]:80``."""
    text = addr_text(addr)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


class AddressField:
    """The ``addr`` attribute of Service, Dest and LocalAddress.

    Set it to a ``netaddr.IPAddress`` (or anything with ``packed``), to 4 or
    16 packed bytes, or to None; reading it gives a ``netaddr.IPAddress``
    (made on first read).  :func:`packed` reads the bytes without netaddr.
    """

    def __init__(self, required: bool = False) -> None:
        self.required = required

    def __get__(self, obj: Any, owner: type | None = None) -> IPAddress | None:
        if obj is None:     # the dataclass's default (none when required)
            if self.required:
                raise AttributeError("addr")
            return None
        value = obj.__dict__.get("_addr")
        if value is None and obj.__dict__.get("_packed") is not None:
            value = obj.__dict__["_addr"] = ip(obj.__dict__["_packed"])
        return value

    def __set__(self, obj: Any, value: IPAddress | bytes | None) -> None:
        if isinstance(value, (bytes, bytearray)):
            if len(value) not in (4, 16):
                raise ValueError(f"a packed address has 4 or 16 bytes, not {len(value)}")
            obj.__dict__["_addr"], obj.__dict__["_packed"] = None, bytes(value)
        elif value is None:
            obj.__dict__["_addr"] = obj.__dict__["_packed"] = None
        elif type(value).__module__.startswith("netaddr"):
            obj.__dict__["_addr"], obj.__dict__["_packed"] = value, value.packed
        else:   # ipaddress objects and the like: read back as netaddr's
            obj.__dict__["_addr"], obj.__dict__["_packed"] = None, bytes(value.packed)


def packed(obj: Any) -> bytes | None:
    """The packed ``addr`` of a Service, Dest or LocalAddress (None if unset)."""
    return obj.__dict__.get("_packed")
