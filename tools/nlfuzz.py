"""Malformed requests to the IPVS generic netlink family, and a judge of the answers.

``tests/kernel/test_netlink_fuzz.py`` sends what :class:`Fuzzer` makes to
the kernel and gives every answer to :func:`judge`.  The messages are packed
by hand (the wire layer of ipvsadm-py refuses to make broken ones) from the
attribute tables of ``ipvsadm_py.wire``; everything is derived from one
seed, so a failure is reproduced by its seed and message index.

What a message can be (drawn at random for each):

* a valid request (a quarter of the creations, a tenth of the rest): a
  service, real server, sync daemon or local address built from small
  pools of values, naming services sent before (so that later requests
  meet what earlier ones created);
* a near-valid request: the same, then mutated: an attribute dropped,
  duplicated, retyped (random, boundary, NLA_F_NESTED/NET_BYTEORDER bits),
  its payload cut to 0, 1 or one byte short, grown, or replaced by
  boundary values or random bytes; nests filled with garbage or nested
  deeply;
* an attribute soup: random types, lengths and nesting at every level;
* a broken frame: attribute headers shorter than 4 bytes or overrunning
  their parent, bytes left after the last attribute, a cut generic netlink
  header, a netlink length beyond the datagram (dropped by the kernel
  without an answer: the runner checks that with a probe).

FLUSH, which empties the table whatever it carries, goes out as a dump
(refused: it has none) four times in five.

The kernel must answer each request it parses with exactly one final
message (an error or ACK for a "do", NLMSG_DONE or an error for a dump),
with well-formed messages before it; :func:`judge` says what is wrong with
an answer.  Nothing here opens sockets.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import struct
from typing import Callable, Union

from ipvsadm_py import abi

NLMSG_HDR = struct.Struct("=IHHII")     # len, type, flags, seq, pid
GENL_HDR = struct.Struct("=BBH")        # cmd, version, reserved
NLA_HDR = struct.Struct("=HH")          # len, type
NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = 0x3FFF
NLM_F_ECHO = 0x8
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_ATOMIC = 0x400
NLM_F_APPEND = 0x800
NLM_F_CAPPED = 0x100                   # in an NLMSG_ERROR: only the header echoed
NLM_F_ACK_TLVS = 0x200                 # in an NLMSG_ERROR/DONE: extended ACK follows
NLMSGERR_ATTR_OFFS = 2
MAX_ERRNO = 4095

#: Commands 1..20: upstream's 1..17 and the local-address commands 18..20.
COMMANDS = tuple(range(abi.CMD_NEW_SERVICE, abi.CMD_GET_LADDR + 1))
#: Commands that create what the others act on.
CREATIONS = (abi.CMD_NEW_SERVICE, abi.CMD_NEW_DEST, abi.CMD_NEW_LADDR, abi.CMD_NEW_DAEMON)
#: Numbers no command has, asked now and then.
BAD_COMMANDS = (0, 21, 22, 127, 128, 255)

# Attribute sets: number -> kind, from the wire layer's declarations.
KINDS: dict[str, dict[int, str]] = {
    name: {number: kind for number, (_n, kind) in enumerate(cls.nla_map)}
    for name, cls in (("ipvsmsg", abi.ipvsmsg), ("service", abi.service),
                      ("dest", abi.dest), ("daemon", abi.daemon),
                      ("laddr", abi.laddr), ("stats", abi.stats),
                      ("stats64", abi.stats64))}
NESTS = frozenset(KINDS)

# Boundary values of integers, by width in bytes.
EDGES = {1: (0, 1, 0x7F, 0x80, 0xFF),
         2: (0, 1, 0x7F, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF),
         4: (0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF),
         8: (0, 1, 0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)}
WIDTHS = {"uint8": 1, "uint16": 2, "be16": 2, "uint32": 4, "uint64": 8}

# Small pools: near-valid requests name the same few objects again.
ADDRS4 = ("10.0.0.1", "10.0.0.2", "192.168.10.1", "0.0.0.0", "255.255.255.255")
ADDRS6 = ("2001:db8::1", "2001:db8::2", "::", "::1", "ff02::1")
PORTS = (80, 443, 0, 65535)
NAMES = ("rr", "wlc", "sh", "mh", "twos", "sip", "lo", "", "none", "x" * 15, "x" * 16,
         "y" * 31, "z" * 40)

# A node of a message being built: (type, payload) with payload bytes or
# a list of nodes (a nest).  An optional third element overrides nla_len.
Node = tuple
Payload = Union[bytes, list]


def nla(kind_no: int, payload: bytes, length: int | None = None) -> bytes:
    """One attribute: header (``length`` overrides the true nla_len), payload, padding."""
    true_len = NLA_HDR.size + len(payload)
    head = NLA_HDR.pack((true_len if length is None else length) & 0xFFFF, kind_no & 0xFFFF)
    return head + payload + b"\0" * (-true_len & 3)


def pack_nodes(nodes: list[Node]) -> bytes:
    """Nodes to bytes; a list payload becomes a nest."""
    out = []
    for node in nodes:
        kind_no, payload = node[0], node[1]
        body = pack_nodes(payload) if isinstance(payload, list) else payload
        out.append(nla(kind_no, body, node[2] if len(node) > 2 else None))
    return b"".join(out)


def ip_bytes(text: str) -> bytes:
    """An address as the 16-byte union nf_inet_addr."""
    import ipaddress
    return ipaddress.ip_address(text).packed.ljust(16, b"\0")


@dataclasses.dataclass
class Case:
    """One request: what was sent and what must come back."""

    index: int
    cmd: int
    flags: int
    data: bytes            # the whole datagram
    seq: int
    answered: bool = True  # False: the kernel drops it without an answer
    what: str = ""         # how it was made (for the failure report)

    @property
    def dump(self) -> bool:
        return self.flags & abi.NLM_F_DUMP == abi.NLM_F_DUMP

    def describe(self) -> str:
        return (f"case {self.index}: cmd {self.cmd} flags {self.flags:#x} seq {self.seq} "
                f"({self.what}), {len(self.data)} bytes: {self.data.hex()}")


class Fuzzer:
    """Every message from one seed: ``cases(family, count)``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        # services sent unchanged in NEW_SERVICE requests: later requests
        # name them again, so that real servers and local addresses get
        # added to services that exist
        self.known: list[list[Node]] = []

    # ------------------------------------------------------------ values
    def integer(self, width: int) -> int:
        rng = self.rng
        return rng.choice(EDGES[width]) if rng.random() < 0.6 else rng.getrandbits(8 * width)

    def blob(self, low: int = 0, high: int = 64) -> bytes:
        return self.rng.randbytes(self.rng.randint(low, high))

    def value(self, kind: str, name: str = "") -> Payload:
        """A plausible or boundary value of an attribute kind (bytes or nest)."""
        rng = self.rng
        if kind in WIDTHS:
            width = WIDTHS[kind]
            order = "big" if kind == "be16" else "little"
            return self.integer(width).to_bytes(width, order)
        if kind == "asciiz":
            text = rng.choice(NAMES).encode()
            return text if rng.random() < 0.2 else text + b"\0"   # unterminated now and then
        if kind == "cdata":
            if rng.random() < 0.7:
                raw = ip_bytes(rng.choice(ADDRS4 + ADDRS6))
                return raw[:4] if rng.random() < 0.2 else raw
            return self.blob(0, 20)
        if kind == "svc_flags":
            return struct.pack("=II", self.integer(4), self.integer(4))
        if kind in NESTS:
            return self.soup(kind, depth=1)
        return self.blob()

    # ------------------------------------------------------------ templates
    def service(self) -> list[Node]:
        """A service that could exist (TCP/UDP address:port or a fwmark),
        often one a valid NEW_SERVICE request named before."""
        rng = self.rng
        if self.known and rng.random() < 0.7:
            return list(rng.choice(self.known))
        six = rng.random() < 0.3
        af = socket.AF_INET6 if six else socket.AF_INET
        nodes: list[Node] = [(1, struct.pack("=H", af))]
        if rng.random() < 0.2:
            nodes.append((5, struct.pack("=I", rng.randint(0, 3))))
        else:
            nodes += [(2, struct.pack("=H", rng.choice((socket.IPPROTO_TCP, socket.IPPROTO_UDP,
                                                        socket.IPPROTO_SCTP)))),
                      (3, ip_bytes(rng.choice(ADDRS6 if six else ADDRS4))),
                      (4, struct.pack(">H", rng.choice(PORTS)))]
        nodes += [(6, rng.choice((b"rr\0", b"wlc\0", b"sh\0"))),
                  (7, struct.pack("=II", rng.choice((0, abi.SVC_F_SYNPROXY,
                                                     abi.SVC_F_PERSISTENT)), 0xFFFFFFFF)),
                  (8, struct.pack("=I", rng.choice((0, 300)))),
                  (9, struct.pack("=I", 128 if six else 0xFFFFFFFF))]
        if rng.random() < 0.1:
            nodes.append((11, b"sip\0"))
        return nodes

    def dest(self, af: int) -> list[Node]:
        """A real server, mostly of the service's family ``af``."""
        rng = self.rng
        six = (af == socket.AF_INET6) != (rng.random() < 0.1)
        return [(1, ip_bytes(rng.choice(ADDRS6 if six else ADDRS4))),
                (2, struct.pack(">H", rng.choice(PORTS))),
                (3, struct.pack("=I", rng.choice((0, 2, 3, abi.FWD_FULLNAT)))),
                (4, struct.pack("=I", rng.choice((0, 1, 100)))),
                (5, struct.pack("=I", 0)), (6, struct.pack("=I", 0)),
                (11, struct.pack("=H", socket.AF_INET6 if six else socket.AF_INET)),
                (13, struct.pack("=B", rng.choice((0, 1, 2)))),
                (14, struct.pack(">H", rng.choice((0, 6080)))),
                (15, struct.pack("=H", rng.choice((0, 1, 2))))]

    def daemon(self) -> list[Node]:
        rng = self.rng
        nodes: list[Node] = [(1, struct.pack("=I", rng.choice((1, 2, 3)))),
                             (2, rng.choice((b"lo\0", b"nosuchdev\0"))),
                             (3, struct.pack("=I", rng.randint(0, 3)))]
        if rng.random() < 0.5:
            nodes += [(4, struct.pack("=H", rng.choice((0, 1500, 0xFFFF)))),
                      (5, ip_bytes("224.0.0.81")[:4]),
                      (7, struct.pack("=H", rng.choice((0, 8848)))),
                      (8, struct.pack("=B", rng.choice((0, 1, 255))))]
        return nodes

    def laddr(self, af: int) -> list[Node]:
        """A local address, mostly of the service's family ``af``."""
        rng = self.rng
        six = (af == socket.AF_INET6) != (rng.random() < 0.1)
        return [(1, ip_bytes(rng.choice(ADDRS6 if six else ADDRS4)))]

    def template(self, cmd: int) -> list[Node]:
        """The attributes a valid request of ``cmd`` would carry (some of
        them, for the commands that take none)."""
        rng = self.rng
        svc = (1, self.service())
        af = struct.unpack("=H", svc[1][0][1])[0]
        if cmd in (abi.CMD_NEW_DEST, abi.CMD_SET_DEST, abi.CMD_DEL_DEST):
            return [svc, (2, self.dest(af))]
        if cmd in (abi.CMD_NEW_LADDR, abi.CMD_DEL_LADDR):
            return [svc, (7, self.laddr(af))]
        if cmd in (abi.CMD_NEW_DAEMON, abi.CMD_DEL_DAEMON, abi.CMD_GET_DAEMON):
            return [(3, self.daemon())]
        if cmd == abi.CMD_SET_CONFIG:
            return [(n, struct.pack("=I", rng.choice((0, 1, 900, 0x7FFFFFFF)))) for n in (4, 5, 6)]
        if cmd in (abi.CMD_GET_CONFIG, abi.CMD_GET_INFO, abi.CMD_SET_INFO,
                   abi.CMD_FLUSH) and rng.random() < 0.5:
            return []
        return [svc]

    # ------------------------------------------------------------ garbage
    def soup(self, table: str | None, depth: int = 0) -> list[Node]:
        """Random attributes of a table (or of none): types, sizes, nests."""
        rng = self.rng
        kinds = KINDS.get(table or "", {})
        nodes: list[Node] = []
        for _ in range(rng.randint(0, 6)):
            if kinds and rng.random() < 0.7:
                number = rng.choice(list(kinds))
                payload = (self.soup(kinds[number], depth + 1)
                           if kinds[number] in NESTS and depth < 4 else
                           self.value(kinds[number]))
            else:
                number = rng.choice((0, rng.randint(0, 40), NLA_TYPE_MASK))
                payload = self.soup(None, depth + 1) if depth < 3 and rng.random() < 0.3 \
                    else self.blob()
            if isinstance(payload, list) and rng.random() < 0.5:
                number |= NLA_F_NESTED
            nodes.append((number, payload))
        return nodes

    def deep(self, levels: int) -> Node:
        """A nest ``levels`` deep with garbage at the bottom."""
        node: Node = (self.rng.randint(0, 16), self.blob(0, 16))
        for _ in range(levels):
            node = (self.rng.choice((1, 2, 3, 7)) | (NLA_F_NESTED if self.rng.random() < 0.5
                                                    else 0), [node])
        return node

    def mutate(self, nodes: list[Node], table: str, depth: int = 0) -> list[Node]:
        """One to three changes to a list of attributes (recursing into nests)."""
        rng = self.rng
        nodes = list(nodes)
        for _ in range(rng.randint(1, 3)):
            if not nodes:
                nodes.append(self.deep(rng.randint(1, 64)) if rng.random() < 0.3
                             else (rng.randint(0, 20), self.blob()))
                continue
            i = rng.randrange(len(nodes))
            kind_no, payload = nodes[i][0], nodes[i][1]
            sub = KINDS.get(table, {}).get(kind_no & NLA_TYPE_MASK, "")
            op = rng.randrange(10)
            if op == 0:
                del nodes[i]
            elif op == 1:
                nodes.insert(i, nodes[i])                   # duplicate
            elif op == 2:                                   # retype
                nodes[i] = (rng.choice((0, rng.randint(0, 20), 0x3FFF,
                                        kind_no ^ NLA_F_NESTED,
                                        kind_no | NLA_F_NET_BYTEORDER)), payload)
            elif op == 3 and isinstance(payload, list) and sub in NESTS:
                nodes[i] = (kind_no, self.mutate(payload, sub, depth + 1))
            elif op == 4:                                   # garbage in place
                nodes[i] = (kind_no, self.soup(sub or None, depth + 1)
                            if rng.random() < 0.5 else self.blob())
            elif op == 5:
                raw = pack_nodes(payload) if isinstance(payload, list) else payload
                cut = rng.choice((0, 1, max(len(raw) - 1, 0), rng.randint(0, len(raw))))
                nodes[i] = (kind_no, raw[:cut])
            elif op == 6:
                raw = pack_nodes(payload) if isinstance(payload, list) else payload
                nodes[i] = (kind_no, raw + self.blob(1, 300 if rng.random() < 0.9 else 4000))
            elif op == 7 and sub in WIDTHS:
                width = WIDTHS[sub]
                nodes[i] = (kind_no, self.integer(width).to_bytes(width, "little"))
            elif op == 8:
                nodes.insert(i, self.deep(rng.randint(1, 64)))
            else:
                nodes.append((rng.randint(0, 20), self.value(rng.choice(list(WIDTHS)
                                                                        + ["asciiz", "cdata"]))))
        return nodes

    # ------------------------------------------------------------ frames
    def attributes(self, cmd: int) -> tuple[bytes, str]:
        """The attribute bytes of a request, and how they were made."""
        rng = self.rng
        roll = rng.random()
        # creations more often valid: later requests find objects to act on
        if roll < (0.25 if cmd in CREATIONS else 0.1):
            nodes = self.template(cmd)
            if cmd == abi.CMD_NEW_SERVICE and len(self.known) < 16:
                self.known.append(nodes[0][1])
            return pack_nodes(nodes), "valid"
        if roll < 0.65:
            return pack_nodes(self.mutate(self.template(cmd), "ipvsmsg")), "mutated"
        if roll < 0.85:
            return pack_nodes(self.soup("ipvsmsg")), "soup"
        return self.broken_attributes(cmd)

    def broken_attributes(self, cmd: int) -> tuple[bytes, str]:
        """Attribute headers that lie: too short, overrunning, trailing bytes."""
        rng = self.rng
        body = pack_nodes(self.mutate(self.template(cmd), "ipvsmsg"))
        how = rng.randrange(4)
        if how == 0:       # an attribute claiming fewer than 4 bytes
            return body + NLA_HDR.pack(rng.randint(0, 3), rng.randint(0, 8)) + self.blob(0, 8), \
                "nla_len<4"
        if how == 1:       # an attribute running past the message
            extra = self.blob(0, 12)
            return body + NLA_HDR.pack(4 + len(extra) + rng.randint(1, 4000),
                                       rng.randint(0, 8)) + extra, "nla overruns message"
        if how == 2:       # a nest whose child runs past the nest
            child = NLA_HDR.pack(rng.randint(8, 200), rng.randint(1, 15)) + self.blob(0, 4)
            return body + nla(rng.choice((1, 2, 3, 7)) | NLA_F_NESTED, child), \
                "child overruns nest"
        return body + self.blob(1, 3), "trailing bytes"

    def flags(self, cmd: int) -> int:
        """NLM_F_REQUEST|ACK, a dump now and then, other bits at random."""
        rng = self.rng
        flags = abi.NLM_F_REQUEST | abi.NLM_F_ACK
        # a FLUSH empties the table whatever it carries: mostly sent as a
        # dump (refused), so that what the other requests build lives on
        if rng.random() < (0.8 if cmd == abi.CMD_FLUSH else 0.35):
            flags |= abi.NLM_F_DUMP
        elif rng.random() < 0.15:
            flags |= rng.choice((NLM_F_ROOT, NLM_F_MATCH, NLM_F_ATOMIC, NLM_F_APPEND))
        if rng.random() < 0.1:
            flags |= rng.choice((NLM_F_ECHO, 0x10, 0x20, 0x1000, 0x8000))
        return flags

    def case(self, index: int, cmd: int, family: int, seq: int) -> Case:
        rng = self.rng
        flags = self.flags(cmd)
        attrs, what = self.attributes(cmd)
        version = abi.GENL_VERSION if rng.random() < 0.9 else rng.randint(0, 255)
        reserved = 0 if rng.random() < 0.9 else rng.getrandbits(16)
        genl = GENL_HDR.pack(cmd, version, reserved)
        frame = rng.random()
        if frame < 0.03:                        # generic netlink header cut short
            genl, attrs, what = genl[:rng.randint(0, 3)], b"", "short genl header"
        payload = genl + attrs
        length = NLMSG_HDR.size + len(payload)
        answered = True
        trailer = b""
        if 0.03 <= frame < 0.05:                # claims more than was sent
            length += rng.randint(1, 1000)
            answered, what = False, what + ", nlmsg_len beyond the datagram"
        elif 0.05 <= frame < 0.07:              # claims less: the tail is ignored
            trailer = payload[-rng.randint(1, min(12, len(payload))):] if payload else b""
            payload = payload[:len(payload) - len(trailer)]
            length = NLMSG_HDR.size + len(payload)
            what += ", bytes after nlmsg_len"
        data = NLMSG_HDR.pack(length, family, flags, seq, 0) + payload + trailer
        return Case(index, cmd, flags, data, seq, answered, what)

    def cases(self, family: int, count: int, first_seq: int = 1) -> list[Case]:
        """``count`` cases: every command of COMMANDS equally often, in a
        random order, and a few of BAD_COMMANDS."""
        rng = self.rng
        bad = max(count // 50, 1)
        cmds = [COMMANDS[i % len(COMMANDS)] for i in range(count - bad)]
        cmds += [rng.choice(BAD_COMMANDS) for _ in range(bad)]
        rng.shuffle(cmds)
        return [self.case(i, cmd, family, first_seq + i) for i, cmd in enumerate(cmds)]


# ---------------------------------------------------------------- judging

def split_messages(data: bytes) -> tuple[list[tuple[int, int, int, int, bytes]], str]:
    """A datagram's netlink messages as (type, flags, seq, pid, payload),
    and what is wrong with its framing ('' if nothing)."""
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < NLMSG_HDR.size:
            return out, f"{len(data) - pos} stray bytes after the last message"
        length, kind, flags, seq, pid = NLMSG_HDR.unpack_from(data, pos)
        if length < NLMSG_HDR.size or pos + length > len(data):
            return out, f"message at {pos} has nlmsg_len {length} in {len(data)} bytes"
        out.append((kind, flags, seq, pid, data[pos + NLMSG_HDR.size:pos + length]))
        pos += (length + 3) & ~3
    return out, ""


def attrs_problem(data: bytes, depth: int = 0) -> str:
    """What is wrong with a run of attributes the kernel sent ('' if nothing);
    nests (NLA_F_NESTED, or a payload that parses as attributes) are walked."""
    pos = 0
    while pos + NLA_HDR.size <= len(data):
        length, _kind = NLA_HDR.unpack_from(data, pos)
        if length < NLA_HDR.size or pos + length > len(data):
            return f"attribute at {pos} has nla_len {length} in {len(data)} bytes"
        if _kind & NLA_F_NESTED and depth < 8:
            inner = attrs_problem(data[pos + NLA_HDR.size:pos + length], depth + 1)
            if inner:
                return f"in the nest at {pos}: {inner}"
        pos += (length + 3) & ~3
    if pos < len(data) and depth == 0:
        return f"{len(data) - pos} stray bytes after the last attribute"
    return ""


def error_problem(payload: bytes, flags: int, case: Case) -> str:
    """What is wrong with an NLMSG_ERROR answering ``case`` ('' if nothing)."""
    if len(payload) < 4 + NLMSG_HDR.size:
        return f"NLMSG_ERROR of {len(payload)} bytes"
    err = struct.unpack_from("=i", payload)[0]
    if not -MAX_ERRNO <= err <= 0:
        return f"NLMSG_ERROR with error {err}"
    echoed = payload[4:4 + NLMSG_HDR.size]
    if echoed != case.data[:NLMSG_HDR.size]:
        return f"NLMSG_ERROR echoes header {echoed.hex()}, not the request's"
    pos = 4 + NLMSG_HDR.size
    if err and not flags & NLM_F_CAPPED:
        sent = NLMSG_HDR.unpack_from(case.data)[0]
        body = payload[pos:pos + sent - NLMSG_HDR.size]
        if body != case.data[NLMSG_HDR.size:sent]:
            return "NLMSG_ERROR echoes another request body"
        pos += (sent - NLMSG_HDR.size + 3) & ~3
    if flags & NLM_F_ACK_TLVS:
        tlvs = payload[pos:]
        problem = attrs_problem(tlvs)
        if problem:
            return f"extended ACK: {problem}"
        offset = _tlv_u32(tlvs, NLMSGERR_ATTR_OFFS)
        if offset is not None and offset >= len(case.data):
            return f"extended ACK points at byte {offset} of a {len(case.data)}-byte request"
    return ""


def _tlv_u32(data: bytes, wanted: int) -> int | None:
    pos = 0
    while pos + 8 <= len(data):
        length, kind = NLA_HDR.unpack_from(data, pos)
        if length < 4:
            return None
        if kind & NLA_TYPE_MASK == wanted and length >= 8:
            return struct.unpack_from("=I", data, pos + 4)[0]
        pos += (length + 3) & ~3
    return None


@dataclasses.dataclass
class Answer:
    """The messages received for one case, and whether they are complete."""

    messages: list[tuple[int, int, int, int, bytes]] = dataclasses.field(default_factory=list)
    done: bool = False      # a final message (ERROR or DONE) arrived
    problem: str = ""


def take(answer: Answer, datagram: bytes, case: Case, family: int, portid: int) -> None:
    """Add a received datagram to ``answer``; sets ``done`` or ``problem``."""
    messages, framing = split_messages(datagram)
    if framing:
        answer.problem = framing
        return
    for kind, flags, seq, pid, payload in messages:
        answer.messages.append((kind, flags, seq, pid, payload))
        if answer.done:
            answer.problem = f"message of type {kind} after the final one"
            return
        if seq != case.seq or pid != portid:
            answer.problem = f"message for seq {seq} pid {pid}, not {case.seq}/{portid}"
            return
        if kind == abi.NLMSG_ERROR:
            answer.problem = error_problem(payload, flags, case)
            answer.done = True
        elif kind == abi.NLMSG_DONE:
            if not case.dump:
                answer.problem = "NLMSG_DONE for a request that was not a dump"
            elif len(payload) < 4 or struct.unpack_from("=i", payload)[0] > 0:
                answer.problem = f"NLMSG_DONE with payload {payload[:8].hex()}"
            answer.done = True
        elif kind == family:
            answer.problem = data_problem(payload)
        else:
            answer.problem = f"message of type {kind}"
        if answer.problem:
            return


def data_problem(payload: bytes) -> str:
    """What is wrong with a data message of the IPVS family ('' if nothing)."""
    if len(payload) < GENL_HDR.size:
        return f"data message of {len(payload)} bytes"
    cmd = payload[0]
    if cmd not in COMMANDS:
        return f"data message with command {cmd}"
    problem = attrs_problem(payload[GENL_HDR.size:])
    return f"data message (command {cmd}): {problem}" if problem else ""


def judge(case: Case, receive: Callable[[], bytes | None], family: int, portid: int) -> Answer:
    """Read the answer to ``case`` with ``receive`` (one datagram, or None
    when nothing came in time) until its final message."""
    answer = Answer()
    while not answer.done and not answer.problem:
        datagram = receive()
        if datagram is None:
            answer.problem = "no final answer in time"
            break
        take(answer, datagram, case, family, portid)
    return answer
