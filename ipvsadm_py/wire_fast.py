"""The two optimisations of the wire layer, kept apart from the plain codec.

* :class:`PlanCache`: a dump repeats a few message layouts (the same
  attributes, sizes and order) thousands of times.  A message of a new
  layout is walked attribute by attribute and leaves a *plan*: one
  ``struct`` that reads every attribute header (to check that a later
  message has that layout) and one that reads every value, one call each.
  The result is the walk's, always; the unit tests compare both on recorded
  and on randomly damaged replies.
* :func:`remembered`: an encoder that keeps what it made, for a nested
  attribute that a restore sends again and again (the virtual service on
  each of its real servers' lines).

:func:`ipvsadm_py.wire.decode_attrs` and :func:`ipvsadm_py.wire.encode`
use them; nothing else should.  This module knows no attribute set: the
wire module hands it the readers.
"""

from __future__ import annotations

import collections
import struct

from ipvsadm_py.abi import NLA_TYPE_MASK as _TYPE_MASK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


# How an attribute's value is read: ``width``, the bytes it needs (0: the
# whole payload); ``code``, the struct code of a native number (else None);
# ``convert``, raw bytes -> value (None: keep the bytes).  A namedtuple, not
# a typing.NamedTuple: the command does not import typing.
Field = collections.namedtuple("Field", "width code convert")


_HEADER = struct.Struct("=HH")
_U32 = struct.Struct("=I")


class _Plan:
    """One layout of one attribute set at one length."""

    __slots__ = ("headers", "read_headers", "read_values", "names", "converts")

    def __init__(self, data: bytes | memoryview, start: int, end: int,
                 known: dict[int, tuple[str, Field]]) -> None:
        """Raises ValueError if the layout of ``data[start:end]`` cannot be planned."""
        header_codes, value_codes, headers, names, converts = [], [], [], [], []
        header_pos = value_pos = pos = start
        while pos + 4 <= end:
            length, number = _HEADER.unpack_from(data, pos)
            if length < 4 or pos + length > end:
                raise ValueError("attribute out of bounds")
            header_codes.append(f"{pos - header_pos}xI")
            headers.append(_U32.unpack_from(data, pos)[0])
            header_pos = pos + 4
            entry = known.get(number & _TYPE_MASK)
            if entry is not None:
                name, (width, code, convert) = entry
                if length - 4 < width or name in names:
                    raise ValueError("no plan for this attribute")   # the walk skips it
                width = width or length - 4
                value_codes.append(f"{pos + 4 - value_pos}x{code or f'{width}s'}")
                value_pos = pos + 4 + width
                if convert is not None:
                    converts.append((len(names), name, convert))
                names.append(name)
            pos += (length + 3) & ~3
        self.headers = tuple(headers)
        self.read_headers = struct.Struct("=" + "".join(header_codes)).unpack_from
        self.read_values = struct.Struct("=" + "".join(value_codes)).unpack_from
        self.names = tuple(names)
        self.converts = tuple(converts)

    def decode(self, data: bytes | memoryview, start: int) -> dict[str, Any] | None:
        """The attributes, or None if this message's layout differs."""
        if self.read_headers(data, start) != self.headers:
            return None
        values = self.read_values(data, start)
        out = dict(zip(self.names, values))
        for index, name, convert in self.converts:
            out[name] = convert(values[index])
        return out


class PlanCache:
    """Decodes attributes with layout plans, falling back to the walk.

    ``fields(attr_set)`` gives number -> (name, :class:`Field`) of the
    readable attributes of a set; ``walk(data, start, end, attr_set)`` is the
    plain decoder.  Plans are kept per (set, length), a few per key
    (schedulers ``rr`` and ``wlc`` make two layouts of one length); a
    message that fits none is walked, and ``walks`` counts those."""

    MAX_KEYS = 256
    PLANS_PER_KEY = 4

    def __init__(self, fields: Callable[[str], dict[int, tuple[str, Field]]],
                 walk: Callable[..., dict[str, Any]]) -> None:
        self.fields, self.walk = fields, walk
        self.plans: dict[tuple[str, int], list[_Plan | None]] = {}
        self.walks = 0

    def clear(self) -> None:
        self.plans.clear()
        self.walks = 0

    def decode(self, data: bytes | memoryview, start: int, end: int,
               attr_set: str) -> dict[str, Any]:
        key = (attr_set, end - start)
        plans = self.plans.get(key)
        if plans is None:
            if len(self.plans) >= self.MAX_KEYS:
                return self._walk(data, start, end, attr_set)
            plans = self.plans[key] = []
        for plan in plans:
            out = plan.decode(data, start) if plan is not None else None
            if out is not None:
                return out
        if len(plans) < self.PLANS_PER_KEY:
            try:
                plans.append(_Plan(data, start, end, self.fields(attr_set)))
            except (ValueError, struct.error):
                plans.append(None)     # this layout is always walked
        return self._walk(data, start, end, attr_set)

    def _walk(self, data: bytes | memoryview, start: int, end: int,
              attr_set: str) -> dict[str, Any]:
        self.walks += 1
        return self.walk(data, start, end, attr_set)


def remembered(encode: Callable[[Any], bytes], limit: int = 1024) -> Callable[[Any], bytes]:
    """``encode`` (value: a list of (name, value) pairs -> bytes) that keeps
    up to ``limit`` results; a value that cannot be hashed is encoded anew."""
    made: dict[tuple, bytes] = {}

    def encode_remembered(value: Any) -> bytes:
        try:
            key = tuple(value)
            hit = made.get(key)
        except TypeError:
            return encode(value)
        if hit is None:
            if len(made) >= limit:
                made.clear()
            hit = made[key] = encode(value)
        return hit
    return encode_remembered
