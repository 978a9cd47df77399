"""pyroute2's generic netlink codec, fed with ipvsadm_py's declarations: the
oracle for the struct codec of :mod:`ipvsadm_py.wire`.

:func:`classes` turns the attribute sets of :mod:`ipvsadm_py.abi` into
pyroute2 ``genlmsg``/``nla`` classes; :func:`encode` makes a whole message
with them from the (short name, value) attributes ipvsadm_py sends;
:func:`resolve_family` asks the controller through pyroute2's
``GenericNetlinkSocket``.
"""

from __future__ import annotations

from typing import Any

from ipvsadm_py import abi, wire

_BUILT: dict[str, type] = {}


def classes() -> dict[str, type]:
    """The declarations of abi.py as pyroute2 classes (built once)."""
    if _BUILT:
        return _BUILT
    from pyroute2.netlink import genlmsg, nla

    specs = dict(abi.ATTR_SETS, svc_flags=abi.svc_flags)

    def build(name: str) -> type:
        if name in _BUILT:
            return _BUILT[name]
        spec = specs[name]
        body: dict[str, Any] = {"__doc__": spec.__doc__}
        for key in ("prefix", "nla_map", "fields"):
            if hasattr(spec, key):
                body[key] = getattr(spec, key)
        for _attr, kind in getattr(spec, "nla_map", ()):
            if kind in specs:
                body[kind] = build(kind)
        base = genlmsg if name in abi.MESSAGES else nla
        _BUILT[name] = type(name, (base,), body)
        return _BUILT[name]

    for name in specs:
        build(name)
    return _BUILT


def _long_names(attrs: wire.Attrs, attr_set: str) -> list[tuple[str, Any]]:
    """Attributes as pyroute2 takes them: full names, nested runs and
    struct values as dicts."""
    cls = abi.ATTR_SETS[attr_set]
    kinds = {full.removeprefix(cls.prefix).lower(): (full, kind) for full, kind in cls.nla_map}
    out = []
    for name, value in attrs:
        full, kind = kinds[name]
        if isinstance(value, wire.SvcFlags):
            value = value._asdict()
        elif kind in abi.ATTR_SETS:
            value = {"attrs": _long_names(value, kind)}
        out.append((full, value))
    return out


def encode(cmd: int, attrs: wire.Attrs, *, family: int, flags: int, seq: int,
           message: str = "ipvsmsg") -> bytes:
    """One complete message encoded by pyroute2."""
    msg = classes()[message]()
    msg["cmd"] = cmd
    msg["version"] = abi.GENL_VERSION
    msg["attrs"] = _long_names(attrs, message)
    msg["header"]["type"] = family
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data[:msg["header"]["length"]])


def resolve_family(name: str = abi.GENL_NAME) -> int:
    """The family id through pyroute2's ``GenericNetlinkSocket``."""
    from pyroute2.netlink import ctrlmsg
    from pyroute2.netlink.generic import GenericNetlinkSocket

    sock = GenericNetlinkSocket()
    try:
        sock.bind(name, ctrlmsg)
        return int(sock.prid)
    finally:
        sock.close()
