"""API layer: verbs on the IPVS table of the caller's network namespace.

::

    from ipvsadm_py import IPVS, Service, Dest
    with IPVS() as ipvs:
        svc = Service.parse("tcp", "10.0.0.1:80", scheduler="rr")   # or Service(...)
        ipvs.add_service(svc)
        ipvs.add_dest(svc, Dest(addr=IPAddress("10.0.2.11"), port=80, forward=FWD_MASQ))
        for svc, dests in ipvs.table():
            ...

Every verb raises a typed error from :mod:`ipvsadm_py.errors`.  Many
changes at once go through :meth:`IPVS.run` (pipelined: thousands of
requests per second), which returns one error or ``None`` per operation.
"""

from __future__ import annotations

import dataclasses
import errno as E
import os
from collections.abc import Iterable, Sequence

from ipvsadm_py import model, nl, wire
from ipvsadm_py.errors import (NEED_ADMIN, NOT_LOADED, DaemonRunning, DestExists,
                               IPVSError, InvalidInput, KernelRefused, NoDaemon,
                               NoSuchDest, NoSuchService, NotFound, NotLoaded,
                               PermissionDenied, ServiceExists, Unsupported,
                               describe_errno)
from ipvsadm_py.model import Daemon, Dest, Info, LocalAddress, Service, Timeouts

SYSCTL_DIR = "/proc/sys/net/ipv4/vs"
EXT_STATS_PROC = "/proc/net/ip_vs_ext_stats"


@dataclasses.dataclass
class Op:
    """One change: a verb, its netlink command and attributes, and the words
    that name its object in an error message."""

    verb: str
    cmd: int
    attrs: wire.Attrs
    service: Service | None = None
    dest: Dest | None = None
    laddr: LocalAddress | None = None
    daemon: Daemon | None = None

    def subject(self) -> str:
        if self.laddr is not None and self.service is not None:
            return f"local address {model.addr_text(model.packed(self.laddr))} of service " \
                   f"{self.service.describe()}"
        if self.dest is not None and self.service is not None:
            return f"real server {self.dest.describe()} of service {self.service.describe()}"
        if self.service is not None:
            return f"service {self.service.describe()}"
        if self.daemon is not None:
            return f"{self.daemon.state} sync daemon"
        return "IPVS table"


def error_for(op: Op, err: int) -> IPVSError:
    """The typed error for a refused operation (C ipvsadm's table, in words)."""
    what = op.subject()
    svc = op.service.describe() if op.service else ""
    if err == E.EPERM:
        return PermissionDenied(NEED_ADMIN, err)
    if op.verb in ("add_service", "edit_service") and err == E.EEXIST:
        return ServiceExists(f"{what} already exists", err)
    if op.verb in ("add_service", "edit_service") and err == E.ENOENT:
        names = op.service.scheduler if op.service else "?"
        if op.service and op.service.pe_name:
            names += f" or persistence engine {op.service.pe_name}"
        return NotFound(f"scheduler {names} not found (is its module, e.g. "
                        f"ip_vs_{op.service.scheduler if op.service else ''}, available?)",
                        err)
    if err == E.ESRCH and op.verb in ("start_daemon", "stop_daemon"):
        return NoDaemon(f"no {op.daemon.state if op.daemon else ''} sync daemon is running",
                        err)
    if err == E.EEXIST and op.verb == "start_daemon":
        return DaemonRunning(f"{what} is already running", err)
    if err == E.ESRCH:
        return NoSuchService(f"service {svc} does not exist", err)
    if err == E.EEXIST and op.verb.endswith("laddr"):
        return DestExists(f"{what} already exists", err)
    if err == E.EEXIST:
        return DestExists(f"{what} already exists", err)
    if err == E.ENOENT and op.verb.endswith("laddr"):
        return NoSuchDest(f"{what} does not exist", err)
    if err == E.ENOENT and op.verb.endswith("dest"):
        return NoSuchDest(f"real server {op.dest.describe() if op.dest else ''} is not in "
                          f"service {svc}", err)
    if err == E.EOPNOTSUPP and op.verb.endswith("laddr"):
        return Unsupported("the kernel does not support local addresses (the FULLNAT "
                           "side of this ip_vs module is missing)", err)
    if err == E.EINVAL and op.verb.endswith("laddr"):
        return KernelRefused(f"the kernel refused {what}: not a unicast address of the "
                             f"service's address family", err)
    verb = op.verb.replace("_", " ")
    hint = ""
    if err == E.EINVAL:
        hint = ": invalid argument (bad address family, address not unicast, bad value, " \
               "or wrong module version)"
    elif err == E.ERANGE:
        hint = ": value out of range (weight < 0 or lower threshold above the upper?)"
    else:
        hint = f": {describe_errno(err)}"
    return KernelRefused(f"the kernel refused to {verb} {what}{hint}", err)


def load_module(name: str = "ip_vs") -> None:
    """Load ``name`` and its dependencies with kmodpy (like ``modprobe``)."""
    import kmodpy
    from kmodpy.error import KmodError

    kmod = kmodpy.Kmod()
    try:
        deps = [d.decode() if isinstance(d, bytes) else d for d in kmod.show_depends(name)]
    except KmodError as exc:
        raise NotLoaded(f"cannot load {name}: {exc}") from None
    for mod in [*reversed(deps), name]:
        try:
            kmod.modprobe(mod)
        except KmodError as exc:
            if "already" not in str(exc):
                raise NotLoaded(f"cannot load module {mod}: {exc}") from None


class IPVS:
    """The IPVS table of this network namespace, through generic netlink."""

    def __init__(self, load: bool = False) -> None:
        try:
            self.chan = nl.Channel()
        except nl.FamilyMissing:
            if not load:
                raise NotLoaded(NOT_LOADED) from None
            load_module("ip_vs")
            try:
                self.chan = nl.Channel()
            except nl.FamilyMissing:
                raise NotLoaded("IPVS is still not registered after loading ip_vs") from None
        except PermissionError:
            raise PermissionDenied(NEED_ADMIN) from None
        self._fullnat: bool | None = None

    def close(self) -> None:
        self.chan.close()

    def __enter__(self) -> "IPVS":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reading
    def _dump(self, op: Op, table: str = "ipvsmsg") -> list[wire.Reply]:
        try:
            return self.chan.dump(op.cmd, op.attrs, table)
        except nl.NetlinkError as exc:
            raise error_for(op, exc.errno) from None

    def _get(self, op: Op, table: str = "ipvsmsg") -> list[wire.Reply]:
        try:
            return self.chan.request(op.cmd, op.attrs, table)
        except nl.NetlinkError as exc:
            raise error_for(op, exc.errno) from None

    def info(self) -> Info:
        """Version and connection table size of the module."""
        replies = self._get(Op("get_info", wire.CMD_GET_INFO, []), "infomsg")
        attrs = replies[0].attrs if replies else {}
        return Info(attrs.get("version", 0), attrs.get("conn_tab_size", 0))

    def services(self) -> list[Service]:
        """Every virtual service, in the kernel's order."""
        replies = self._dump(Op("list_services", wire.CMD_GET_SERVICE, []))
        return [Service.from_attrs(r.attrs["service"]) for r in replies
                if "service" in r.attrs]

    def service(self, svc: Service) -> Service:
        """The kernel's view of one service (raises NoSuchService)."""
        op = Op("get_service", wire.CMD_GET_SERVICE,
                [("IPVS_CMD_ATTR_SERVICE", wire.nested(svc.to_attrs()))], service=svc)
        replies = self._get(op)
        if not replies:
            raise NoSuchService(f"service {svc.describe()} does not exist", E.ESRCH)
        return Service.from_attrs(replies[0].attrs["service"])

    def dests(self, svc: Service) -> list[Dest]:
        """The real servers of a service, in the kernel's order."""
        op = Op("list_dests", wire.CMD_GET_DEST,
                [("IPVS_CMD_ATTR_SERVICE", wire.nested(svc.key_attrs()))], service=svc)
        return [Dest.from_attrs(r.attrs["dest"], svc.af) for r in self._dump(op)
                if "dest" in r.attrs]

    def table(self, services: Sequence[Service] | None = None,
              stats: bool = True) -> list[tuple[Service, list[Dest]]]:
        """Every service (or the given ones) with its real servers (their
        counters too unless ``stats`` is False: listing is faster without)."""
        svcs = self.services() if services is None else list(services)
        requests = [(wire.CMD_GET_DEST, [("IPVS_CMD_ATTR_SERVICE",
                                          wire.nested(s.key_attrs()))]) for s in svcs]
        out: list[tuple[Service, list[Dest]]] = []
        for svc, result in zip(svcs, self.chan.dump_many(requests)):
            if isinstance(result, nl.NetlinkError):
                raise error_for(Op("list_dests", wire.CMD_GET_DEST, [], service=svc),
                                result.errno)
            out.append((svc, [Dest.from_attrs(r.attrs["dest"], svc.af, stats)
                              for r in result if "dest" in r.attrs]))
        return out

    def timeouts(self) -> Timeouts:
        replies = self._get(Op("get_timeouts", wire.CMD_GET_CONFIG, []))
        return Timeouts.from_attrs(replies[0].attrs if replies else {})

    def daemons(self) -> list[Daemon]:
        """The running sync daemons (master and/or backup)."""
        replies = self._dump(Op("list_daemons", wire.CMD_GET_DAEMON, []))
        return [Daemon.from_attrs(r.attrs["daemon"]) for r in replies
                if "daemon" in r.attrs and r.attrs["daemon"].get("state")]

    def laddrs(self, svc: Service) -> list[LocalAddress]:
        """The FULLNAT local addresses of a service (extension)."""
        op = Op("list_laddr", wire.CMD_GET_LADDR,
                [("IPVS_CMD_ATTR_SERVICE", wire.nested(svc.key_attrs()))], service=svc)
        return [LocalAddress.from_attrs(r.attrs["laddr"], svc.af) for r in self._dump(op)
                if "laddr" in r.attrs]

    def fullnat_supported(self) -> bool:
        """Whether the module knows the local-address commands (asks it once)."""
        if self._fullnat is None:
            try:
                self.chan.dump(wire.CMD_GET_LADDR, [])
                self._fullnat = True
            except nl.NetlinkError as exc:
                self._fullnat = exc.errno != E.EOPNOTSUPP
        return self._fullnat

    @staticmethod
    def synproxy_supported() -> bool:
        """Whether the module has the SYNPROXY side (its sysctls exist)."""
        return os.path.exists(f"{SYSCTL_DIR}/synproxy_init_mss")

    # ------------------------------------------------------------ changing
    def run(self, ops: Iterable[Op]) -> list[IPVSError | None]:
        """Apply operations in order, pipelined; one result per operation."""
        ops = list(ops)
        errs = self.chan.pipeline((op.cmd, op.attrs) for op in ops)
        return [error_for(op, err) if err else None for op, err in zip(ops, errs)]

    def _one(self, op: Op) -> None:
        try:
            self.chan.request(op.cmd, op.attrs)
        except nl.NetlinkError as exc:
            raise error_for(op, exc.errno) from None

    def check_op(self, op: Op) -> None:
        """Refuse extension operations the running module cannot do."""
        if op.dest is not None and op.dest.forward == wire.FWD_FULLNAT \
                and op.verb in ("add_dest", "edit_dest") and not self.fullnat_supported():
            raise Unsupported("the kernel does not support FULLNAT real servers (the "
                              "FULLNAT side of this ip_vs module is missing)")
        if op.service is not None and op.service.synproxy \
                and op.verb in ("add_service", "edit_service") \
                and not self.synproxy_supported():
            raise Unsupported("the kernel does not support SYNPROXY (no "
                              f"{SYSCTL_DIR}/synproxy_init_mss)")

    def do(self, op: Op) -> None:
        """Run one operation, raising its typed error."""
        self.check_op(op)
        self._one(op)

    def add_service(self, svc: Service) -> None:
        self.do(ops.add_service(svc))

    def edit_service(self, svc: Service) -> None:
        self.do(ops.edit_service(svc))

    def set_synproxy(self, svc: Service, enabled: bool = True) -> Service:
        """Switch SYNPROXY (service flag 0x8000) on or off; returns the service
        as it now is.  The kernel refuses it (EOPNOTSUPP) on a service with
        tunnel or direct-routing real servers."""
        flags = (svc.flags | wire.SVC_F_SYNPROXY) if enabled \
            else (svc.flags & ~wire.SVC_F_SYNPROXY)
        new = dataclasses.replace(svc, flags=flags)
        self.edit_service(new)
        return new

    @staticmethod
    def ext_stats(path: str | os.PathLike = EXT_STATS_PROC) -> dict[str, int]:
        """The extended counters (FULLNAT, SYNPROXY, defence) of the caller's
        namespace: name -> total over all CPUs (the last column)."""
        with open(path) as stream:
            lines = stream.read().splitlines()[1:]
        return {f[0]: int(f[-1]) for f in (line.split() for line in lines) if len(f) >= 2}

    def delete_service(self, svc: Service) -> None:
        self.do(ops.delete_service(svc))

    def zero(self, svc: Service | None = None) -> None:
        """Zero the counters of one service, or of all."""
        self.do(ops.zero(svc))

    def flush(self) -> None:
        """Delete every service (the whole table)."""
        self.do(ops.flush())

    def add_dest(self, svc: Service, dest: Dest) -> None:
        self.do(ops.add_dest(svc, dest))

    def edit_dest(self, svc: Service, dest: Dest) -> None:
        self.do(ops.edit_dest(svc, dest))

    def delete_dest(self, svc: Service, dest: Dest) -> None:
        self.do(ops.delete_dest(svc, dest))

    def set_timeouts(self, timeouts: Timeouts) -> None:
        self.do(ops.set_timeouts(timeouts))

    def start_daemon(self, daemon: Daemon) -> None:
        self.do(ops.start_daemon(daemon))

    def stop_daemon(self, daemon: Daemon) -> None:
        self.do(ops.stop_daemon(daemon))

    def add_laddr(self, svc: Service, laddr: LocalAddress) -> None:
        self.do(ops.add_laddr(svc, laddr))

    def delete_laddr(self, svc: Service, laddr: LocalAddress) -> None:
        self.do(ops.delete_laddr(svc, laddr))


class ops:  # noqa: N801 - a namespace of Op builders, named like the verbs
    """Builders of :class:`Op` for :meth:`IPVS.run` (same names as the verbs)."""

    @staticmethod
    def _svc(svc: Service, full: bool = True) -> tuple[str, object]:
        return ("IPVS_CMD_ATTR_SERVICE", wire.nested(svc.to_attrs() if full
                                                     else svc.key_attrs()))

    @staticmethod
    def add_service(svc: Service) -> Op:
        return Op("add_service", wire.CMD_NEW_SERVICE, [ops._svc(svc)], service=svc)

    @staticmethod
    def edit_service(svc: Service) -> Op:
        return Op("edit_service", wire.CMD_SET_SERVICE, [ops._svc(svc)], service=svc)

    @staticmethod
    def delete_service(svc: Service) -> Op:
        return Op("delete_service", wire.CMD_DEL_SERVICE, [ops._svc(svc)], service=svc)

    @staticmethod
    def zero(svc: Service | None = None) -> Op:
        attrs = [ops._svc(svc)] if svc is not None else []
        return Op("zero", wire.CMD_ZERO, attrs, service=svc)

    @staticmethod
    def flush() -> Op:
        return Op("flush", wire.CMD_FLUSH, [])

    @staticmethod
    def add_dest(svc: Service, dest: Dest) -> Op:
        return Op("add_dest", wire.CMD_NEW_DEST,
                  [ops._svc(svc), ("IPVS_CMD_ATTR_DEST", wire.nested(dest.to_attrs()))],
                  service=svc, dest=dest)

    @staticmethod
    def edit_dest(svc: Service, dest: Dest) -> Op:
        return Op("edit_dest", wire.CMD_SET_DEST,
                  [ops._svc(svc), ("IPVS_CMD_ATTR_DEST", wire.nested(dest.to_attrs()))],
                  service=svc, dest=dest)

    @staticmethod
    def delete_dest(svc: Service, dest: Dest) -> Op:
        return Op("delete_dest", wire.CMD_DEL_DEST,
                  [ops._svc(svc), ("IPVS_CMD_ATTR_DEST", wire.nested(dest.to_attrs()))],
                  service=svc, dest=dest)

    @staticmethod
    def set_timeouts(t: Timeouts) -> Op:
        return Op("set_timeouts", wire.CMD_SET_CONFIG, t.to_attrs())

    @staticmethod
    def start_daemon(d: Daemon) -> Op:
        return Op("start_daemon", wire.CMD_NEW_DAEMON,
                  [("IPVS_CMD_ATTR_DAEMON", wire.nested(d.to_attrs()))], daemon=d)

    @staticmethod
    def stop_daemon(d: Daemon) -> Op:
        return Op("stop_daemon", wire.CMD_DEL_DAEMON,
                  [("IPVS_CMD_ATTR_DAEMON", wire.nested(d.to_attrs(full=False)))], daemon=d)

    @staticmethod
    def add_laddr(svc: Service, la: LocalAddress) -> Op:
        return Op("add_laddr", wire.CMD_NEW_LADDR,
                  [ops._svc(svc, full=False), ("IPVS_CMD_ATTR_LADDR",
                                               wire.nested(la.to_attrs()))],
                  service=svc, laddr=la)

    @staticmethod
    def delete_laddr(svc: Service, la: LocalAddress) -> Op:
        return Op("delete_laddr", wire.CMD_DEL_LADDR,
                  [ops._svc(svc, full=False), ("IPVS_CMD_ATTR_LADDR",
                                               wire.nested(la.to_attrs()))],
                  service=svc, laddr=la)


# ---------------------------------------------------------------- sysctls
def read_sysctl(name: str) -> int | None:
    """``/proc/sys/net/ipv4/vs/NAME`` as an integer (None if absent)."""
    try:
        with open(f"{SYSCTL_DIR}/{name}") as stream:
            words = stream.read().split()
        return int(words[0]) if len(words) == 1 else None   # single integers only
    except (OSError, ValueError):
        return None


def write_sysctl(name: str, value: int) -> None:
    try:
        with open(f"{SYSCTL_DIR}/{name}", "w") as stream:
            stream.write(f"{value}\n")
    except FileNotFoundError:
        raise Unsupported(f"sysctl net.ipv4.vs.{name} does not exist in this kernel") from None
    except PermissionError:
        raise PermissionDenied(NEED_ADMIN) from None
    except OSError as exc:
        raise InvalidInput(f"net.ipv4.vs.{name} = {value} refused: "
                           f"{describe_errno(exc.errno or 0)}") from None


def list_sysctls() -> dict[str, int]:
    """Every integer sysctl of IPVS in this namespace."""
    out: dict[str, int] = {}
    if not os.path.isdir(SYSCTL_DIR):
        return out
    for name in sorted(os.listdir(SYSCTL_DIR)):
        value = read_sysctl(name)
        if value is not None:
            out[name] = value
    return out


def is_root_like() -> bool:
    return os.geteuid() == 0
