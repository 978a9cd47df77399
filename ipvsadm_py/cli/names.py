"""Addresses and ports as ipvsadm names them: looked up (host and service
names, cached) unless numeric, IPv6 in brackets.
"""

from __future__ import annotations

import functools
import socket

from ipvsadm_py.model import AF_INET, Protocol, af_of_packed


@functools.lru_cache(maxsize=4096)
def host_name(af: int, raw: bytes) -> str:
    """The name of an address, or the address (ipvsadm looks names up so)."""
    try:
        return socket.gethostbyaddr(socket.inet_ntop(af, raw))[0]
    except (OSError, UnicodeError):
        return socket.inet_ntop(af, raw)


_PROTOCOL_NAMES = {p.value: p.name.lower() for p in Protocol}


@functools.lru_cache(maxsize=4096)
def _service_name(port: int, protocol: int) -> str:
    name = _PROTOCOL_NAMES.get(protocol)
    if name:
        try:
            return socket.getservbyport(port, name)
        except OSError:
            pass
    return str(port)


def addrport(raw: bytes, port: int, protocol: int, numeric: bool) -> str:
    """ipvsadm's ``addrport_to_anyname`` of a packed address: names unless
    numeric, [v6]."""
    af = af_of_packed(raw)
    if numeric:
        text, ptext = socket.inet_ntop(af, raw), str(port)
    else:
        text, ptext = host_name(af, raw), _service_name(port, protocol)
    return f"{text}:{ptext}" if af == AF_INET else f"[{text}]:{ptext}"
