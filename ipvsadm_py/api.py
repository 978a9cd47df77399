"""API layer: verbs on the IPVS table of the caller's network namespace.

::

    from netaddr import IPAddress
    from ipvsadm_py import IPVS, Service, Dest, Forward, Request

    with IPVS() as ipvs:
        svc = Service(protocol=6, addr=IPAddress("10.0.0.1"), port=80, scheduler="rr")
        ipvs.add_service(svc)
        ipvs.add_dest(svc, Dest(addr=IPAddress("10.0.2.11"), port=80, forward=Forward.MASQ))
        for svc, dests in ipvs.table():
            ...
        errors = ipvs.run([Request.delete_service(svc)])   # pipelined

Every verb raises a typed error from :mod:`ipvsadm_py.errors`, chosen by
:func:`error_for` from the request's verb and the kernel's errno.  Many
changes at once go through :meth:`IPVS.run` (thousands of requests per
second), which returns one error or ``None`` per request.
"""

from __future__ import annotations

import dataclasses
import errno as E
import os
from collections.abc import Iterable, Sequence

from ipvsadm_py import codec, nl, procfs
from ipvsadm_py.errors import (NEED_ADMIN, NOT_LOADED, DaemonRunning, DestExists,
                               IPVSError, KernelRefused, NoDaemon, NoSuchDest,
                               NoSuchService, NotFound, NotLoaded, PermissionDenied,
                               ServiceExists, Unsupported, describe_errno)
from ipvsadm_py.model import Daemon, Dest, Forward, Info, LocalAddress, Service, Timeouts
from ipvsadm_py.verbs import Kind, Request, Verb

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import Any, Callable

NO_LADDRS = ("the kernel does not support local addresses (the FULLNAT side of this "
             "ip_vs module is missing)")
NO_FULLNAT = ("the kernel does not support FULLNAT real servers (the FULLNAT side of "
              "this ip_vs module is missing)")


# ---------------------------------------------------------------- errors
def _scheduler_missing(req: Request, err: int) -> IPVSError:
    svc = req.service
    names = svc.scheduler if svc else "?"
    if svc and svc.pe_name:
        names += f" or persistence engine {svc.pe_name}"
    return NotFound(f"scheduler {names} not found (is its module, e.g. "
                    f"ip_vs_{svc.scheduler if svc else ''}, available?)", err)


def _service_text(req: Request) -> str:
    return req.service.describe() if req.service else ""


def _laddr_refused(req: Request, err: int) -> IPVSError:
    """EINVAL for a local address is about the address (the kernel takes one
    of the service's family only); for a listing it is the generic refusal."""
    if req.laddr is None:
        return _refused(req, err)
    return KernelRefused(f"the kernel refused {req.subject()}: not a unicast address of "
                         f"the service's address family", err)


# (kind of verb, errno) -> the error; (None, errno) for any kind.
_ERRORS: dict[tuple[Kind | None, int], Callable[[Request, int], IPVSError]] = {
    (Kind.SERVICE, E.EEXIST): lambda r, e: ServiceExists(f"{r.subject()} already exists", e),
    (Kind.SERVICE, E.ENOENT): _scheduler_missing,
    (Kind.DAEMON, E.ESRCH): lambda r, e: NoDaemon(
        f"no {r.daemon.state if r.daemon else ''} sync daemon is running", e),
    (Kind.DAEMON, E.EEXIST): lambda r, e: DaemonRunning(f"{r.subject()} is already running", e),
    (Kind.LADDR, E.ENOENT): lambda r, e: NoSuchDest(f"{r.subject()} does not exist", e),
    (Kind.LADDR, E.EOPNOTSUPP): lambda r, e: Unsupported(NO_LADDRS, e),
    (Kind.LADDR, E.EINVAL): lambda r, e: _laddr_refused(r, e),
    (Kind.DEST, E.ENOENT): lambda r, e: NoSuchDest(
        f"real server {r.dest.describe() if r.dest else ''} is not in service "
        f"{_service_text(r)}", e),
    (None, E.ESRCH): lambda r, e: NoSuchService(f"service {_service_text(r)} does not exist", e),
    (None, E.EEXIST): lambda r, e: DestExists(f"{r.subject()} already exists", e),
}
_HINTS = {
    E.EINVAL: ": invalid argument (bad address family, address not unicast, bad value, "
              "or wrong module version)",
    E.ERANGE: ": value out of range (weight < 0 or lower threshold above the upper?)",
}


def error_for(req: Request, err: int) -> IPVSError:
    """The typed error for a refused request (C ipvsadm's table, in words)."""
    if err == E.EPERM:
        return PermissionDenied(NEED_ADMIN, err)
    make = _ERRORS.get((req.verb.kind, err)) or _ERRORS.get((None, err))
    if make is not None:
        return make(req, err)
    return _refused(req, err)


def _refused(req: Request, err: int) -> IPVSError:
    hint = _HINTS.get(err) or f": {describe_errno(err)}"
    return KernelRefused(f"the kernel refused to {req.verb.value} {req.subject()}{hint}", err)


# ---------------------------------------------------------------- loading
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


# ---------------------------------------------------------------- the table
class IPVS:
    """The IPVS table of this network namespace, through generic netlink."""

    batch_size = nl.BATCH     # requests per sendmsg in run()

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

    def __enter__(self) -> IPVS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reading
    def _ask(self, req: Request, dump: bool = False) -> list[dict[str, Any]]:
        """The attributes of each reply to a read request."""
        cmd, attrs = codec.encode_request(req)
        message = codec.REPLY_MESSAGE.get(req.verb, "ipvsmsg")
        try:
            replies = (self.chan.dump if dump else self.chan.request)(cmd, attrs, message)
        except nl.NetlinkError as exc:
            raise error_for(req, exc.errno) from None
        return [reply.attrs for reply in replies]

    def info(self) -> Info:
        """Version and connection table size of the module."""
        replies = self._ask(Request(Verb.GET_INFO))
        return codec.info_from(replies[0] if replies else {})

    def services(self) -> list[Service]:
        """Every virtual service, in the kernel's order."""
        return [codec.service_from(a["service"])
                for a in self._ask(Request(Verb.LIST_SERVICES), dump=True) if "service" in a]

    def service(self, svc: Service) -> Service:
        """The kernel's view of one service (raises NoSuchService)."""
        replies = self._ask(Request(Verb.GET_SERVICE, svc))
        if not replies:
            raise NoSuchService(f"service {svc.describe()} does not exist", E.ESRCH)
        return codec.service_from(replies[0]["service"])

    def dests(self, svc: Service) -> list[Dest]:
        """The real servers of a service, in the kernel's order."""
        return [codec.dest_from(a["dest"], svc.af)
                for a in self._ask(Request(Verb.LIST_DESTS, svc), dump=True) if "dest" in a]

    def table(self, services: Sequence[Service] | None = None,
              stats: bool = True) -> list[tuple[Service, list[Dest]]]:
        """Every service (or the given ones) with its real servers (their
        counters too unless ``stats`` is False: listing is faster without),
        read over one socket, one dump after the other."""
        svcs = self.services() if services is None else list(services)
        reqs = [Request(Verb.LIST_DESTS, s) for s in svcs]
        results = self.chan.dump_many([codec.encode_request(r) for r in reqs])
        out: list[tuple[Service, list[Dest]]] = []
        for req, result in zip(reqs, results):
            if isinstance(result, nl.NetlinkError):
                raise error_for(req, result.errno)
            svc = req.service
            out.append((svc, [codec.dest_from(r.attrs["dest"], svc.af, stats)
                              for r in result if "dest" in r.attrs]))
        return out

    def timeouts(self) -> Timeouts:
        replies = self._ask(Request(Verb.GET_TIMEOUTS))
        return codec.timeouts_from(replies[0] if replies else {})

    def daemons(self) -> list[Daemon]:
        """The running sync daemons (master and/or backup)."""
        return [codec.daemon_from(a["daemon"])
                for a in self._ask(Request(Verb.LIST_DAEMONS), dump=True)
                if "daemon" in a and codec.daemon_running(a["daemon"])]

    def laddrs(self, svc: Service) -> list[LocalAddress]:
        """The FULLNAT local addresses of a service (extension)."""
        return [codec.laddr_from(a["laddr"], svc.af)
                for a in self._ask(Request(Verb.LIST_LADDRS, svc), dump=True) if "laddr" in a]

    def laddr_table(self, services: Sequence[Service]
                    ) -> list[tuple[Service, list[LocalAddress]]]:
        """The local addresses of many services over one socket, one dump
        after the other (what a scrape of thousands of services needs).  A
        service deleted since it was listed is left out rather than failing
        the whole listing; other refusals raise their typed error."""
        reqs = [Request(Verb.LIST_LADDRS, s) for s in services]
        results = self.chan.dump_many([codec.encode_request(r) for r in reqs])
        out: list[tuple[Service, list[LocalAddress]]] = []
        for req, result in zip(reqs, results):
            svc = req.service
            if isinstance(result, nl.NetlinkError):
                if result.errno == E.ESRCH:
                    continue
                raise error_for(req, result.errno)
            out.append((svc, [codec.laddr_from(r.attrs["laddr"], svc.af)
                              for r in result if "laddr" in r.attrs]))
        return out

    def fullnat_supported(self) -> bool:
        """Whether the module knows the local-address commands (asked once:
        a module without them refuses with EOPNOTSUPP)."""
        if self._fullnat is None:
            try:
                self._ask(Request(Verb.LIST_LADDRS), dump=True)
                self._fullnat = True
            except Unsupported:
                self._fullnat = False
            except IPVSError:
                self._fullnat = True
        return self._fullnat

    @staticmethod
    def synproxy_supported() -> bool:
        """Whether the module has the SYNPROXY side (its sysctls exist)."""
        return procfs.sysctl_exists("synproxy_init_mss")

    @staticmethod
    def ext_stats(path: str | os.PathLike = procfs.EXT_STATS_PROC) -> dict[str, int]:
        """The extended counters (FULLNAT, SYNPROXY, defence) of the caller's
        namespace: name -> total over all CPUs."""
        return procfs.read_ext_stats(path)

    # ------------------------------------------------------------ changing
    def check_supported(self, req: Request) -> None:
        """Refuse extension requests the running module cannot carry out:
        a stock module would take a FULLNAT real server and have no way to
        forward to it."""
        if req.verb in (Verb.ADD_DEST, Verb.EDIT_DEST) and req.dest is not None \
                and req.dest.forward == Forward.FULLNAT and not self.fullnat_supported():
            raise Unsupported(NO_FULLNAT)
        if req.verb in (Verb.ADD_SERVICE, Verb.EDIT_SERVICE) and req.service is not None \
                and req.service.synproxy and not self.synproxy_supported():
            raise Unsupported("the kernel does not support SYNPROXY (no "
                              f"{procfs.SYSCTL_DIR}/synproxy_init_mss)")

    def run(self, requests: Iterable[Request]) -> list[IPVSError | None]:
        """Carry out changes in order, pipelined; one result per request."""
        reqs = list(requests)
        errs = self.chan.pipeline(codec.encode_request(req) for req in reqs)
        return [error_for(req, err) if err else None for req, err in zip(reqs, errs)]

    def do(self, req: Request) -> None:
        """Carry out one change, raising its typed error."""
        self.check_supported(req)
        cmd, attrs = codec.encode_request(req)
        try:
            self.chan.request(cmd, attrs)
        except nl.NetlinkError as exc:
            raise error_for(req, exc.errno) from None

    def add_service(self, svc: Service) -> None:
        self.do(Request.add_service(svc))

    def edit_service(self, svc: Service) -> None:
        """Set every property of a service (those not set return to defaults)."""
        self.do(Request.edit_service(svc))

    def set_synproxy(self, svc: Service, enabled: bool = True) -> Service:
        """Switch SYNPROXY on or off; returns the service as it now is.  The
        kernel refuses it (EOPNOTSUPP) on a service with tunnel or
        direct-routing real servers."""
        new = dataclasses.replace(svc, synproxy=enabled)
        self.edit_service(new)
        return new

    def delete_service(self, svc: Service) -> None:
        self.do(Request.delete_service(svc))

    def zero(self, svc: Service | None = None) -> None:
        """Zero the counters of one service, or of all."""
        self.do(Request.zero(svc))

    def flush(self) -> None:
        """Delete every service (the whole table)."""
        self.do(Request.flush())

    def add_dest(self, svc: Service, dest: Dest) -> None:
        self.do(Request.add_dest(svc, dest))

    def edit_dest(self, svc: Service, dest: Dest) -> None:
        self.do(Request.edit_dest(svc, dest))

    def delete_dest(self, svc: Service, dest: Dest) -> None:
        self.do(Request.delete_dest(svc, dest))

    def set_timeouts(self, timeouts: Timeouts) -> None:
        self.do(Request.set_timeouts(timeouts))

    def start_daemon(self, daemon: Daemon) -> None:
        self.do(Request.start_daemon(daemon))

    def stop_daemon(self, daemon: Daemon) -> None:
        self.do(Request.stop_daemon(daemon))

    def add_laddr(self, svc: Service, laddr: LocalAddress) -> None:
        self.do(Request.add_laddr(svc, laddr))

    def delete_laddr(self, svc: Service, laddr: LocalAddress) -> None:
        self.do(Request.delete_laddr(svc, laddr))
