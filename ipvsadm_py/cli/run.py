"""Carrying out a parsed command: listings, changes, and ``-R`` (many
commands, their changes pipelined).  Exit statuses are ipvsadm's."""

from __future__ import annotations

from ipvsadm_py import procfs, views
from ipvsadm_py.api import IPVS, NO_LADDRS
from ipvsadm_py.cli import fmt, reports
from ipvsadm_py.cli.check import check
from ipvsadm_py.cli.parse import Command, parse
from ipvsadm_py.cli.spec import EXIT_TRYHELP, UsageError
from ipvsadm_py.errors import IPVSError, NotLoaded, PermissionDenied, Unsupported
from ipvsadm_py.model import LocalAddress, Timeouts
from ipvsadm_py.order import sort_services
from ipvsadm_py.verbs import Request

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import TextIO

EXIT_LIST = 1        # a listing failed
EXIT_KERNEL = 255    # the kernel refused
PROG = "ipvsadm-py"


class Session:
    """Output streams, the IPVS handle (opened on first use unless given),
    and ``--load``."""

    def __init__(self, out: TextIO, err: TextIO, load: bool = False,
                 ipvs: IPVS | None = None) -> None:
        self.out, self.err, self.load = out, err, load
        self._ipvs = ipvs

    @property
    def ipvs(self) -> IPVS:
        if self._ipvs is None:
            self._ipvs = IPVS(load=self.load)
        return self._ipvs

    def close(self) -> None:
        if self._ipvs is not None:
            self._ipvs.close()

    def tryhelp(self) -> None:
        self.err.write(f"Try `{PROG} -h' or '{PROG} --help' for more information.\n")


# ------------------------------------------------------------------ changes
_REQUESTS = {
    "add-service": lambda c: Request.add_service(c.service),
    "edit-service": lambda c: Request.edit_service(c.service),
    "delete-service": lambda c: Request.delete_service(c.service),
    "flush": lambda c: Request.flush(),
    "zero": lambda c: Request.zero(c.service if "service-address" in c.given else None),
    "add-server": lambda c: Request.add_dest(c.service, c.dest),
    "edit-server": lambda c: Request.edit_dest(c.service, c.dest),
    "delete-server": lambda c: Request.delete_dest(c.service, c.dest),
    "set": lambda c: Request.set_timeouts(c.timeouts or Timeouts()),
    "start-daemon": lambda c: Request.start_daemon(c.daemon),
    "stop-daemon": lambda c: Request.stop_daemon(c.daemon),
    "add-laddr": lambda c: Request.add_laddr(c.service, c.laddr),
    "del-laddr": lambda c: Request.delete_laddr(c.service, c.laddr),
}


def request_of(cmd: Command) -> Request | None:
    """The change a command asks for (None for listings, help, version)."""
    make = _REQUESTS.get(cmd.name)
    return make(cmd) if make else None


# ------------------------------------------------------------------ listings
def _laddrs_of(session: Session, table) -> dict[tuple, list[LocalAddress]] | None:
    """Local addresses per service, when the module has FULLNAT (else None)."""
    if not session.ipvs.fullnat_supported():
        return None
    return {svc.key: session.ipvs.laddrs(svc) for svc, _ in table if not svc.fwmark}


def _write_json(session: Session, doc: dict) -> int:
    session.out.write(views.dumps(doc))
    return 0


def list_table(session: Session, cmd: Command) -> int:
    """``-L``: the table, or one of its views (connections, timeouts,
    daemons, extended counters)."""
    given, ipvs = cmd.given, session.ipvs
    if "connection" in given:
        return list_connections(session, cmd)
    if "timeout" in given:
        t = ipvs.timeouts()
        if cmd.json:
            return _write_json(session, views.timeouts_document(t))
        session.out.write(reports.timeouts(t))
        return 0
    if "daemon" in given:
        daemons = ipvs.daemons()
        if cmd.json:
            return _write_json(session, views.daemons_document(daemons))
        session.out.write(reports.daemons(daemons))
        return 0
    if "ext-stats" in given:
        return list_ext_stats(session, cmd)
    stats = cmd.json or cmd.view.stats or cmd.view.rate
    if "service-address" in given:
        info, table = None, ipvs.table([ipvs.service(cmd.service)], stats)
    else:
        info, table = ipvs.info(), ipvs.table(stats=stats)
    if cmd.json:
        return _write_json(session, views.services_document(info, table,
                                                            _laddrs_of(session, table)))
    session.out.write(fmt.listing(info, table, cmd.view))
    return 0


def list_connections(session: Session, cmd: Command) -> int:
    try:
        conns = procfs.read_connections()
    except OSError:
        session.err.write(f"cannot open file {procfs.CONN_PROC}\n")
        return EXIT_LIST
    if cmd.json:
        return _write_json(session, views.connections_document(conns))
    session.out.write(reports.connections(conns, cmd.view))
    return 0


def list_ext_stats(session: Session, cmd: Command) -> int:
    try:
        counters = procfs.read_ext_stats()
    except OSError:
        session.err.write(f"{procfs.EXT_STATS_PROC} is missing: the FULLNAT/SYNPROXY side "
                          "of this ip_vs module is not there\n")
        return EXIT_LIST
    if cmd.json:
        return _write_json(session, views.ext_stats_document(counters))
    session.out.write(reports.ext_stats(counters))
    return 0


def save(session: Session, cmd: Command) -> int:
    """``-S``: the table as commands."""
    table = session.ipvs.table(stats=False)
    view = fmt.Format(numeric=cmd.view.numeric, rule=True)
    session.out.write(fmt.listing(None, table, view, _laddrs_of(session, table)))
    return 0


def list_laddrs(session: Session, cmd: Command) -> int:
    """``-G``: the local addresses of one service or of all."""
    ipvs = session.ipvs
    if not ipvs.fullnat_supported():
        raise Unsupported(NO_LADDRS)
    if "service-address" in cmd.given:
        svcs = [ipvs.service(cmd.service)]
    else:
        svcs = sort_services([s for s in ipvs.services() if not s.fwmark])
    rows = [(svc, ipvs.laddrs(svc)) for svc in svcs]
    if cmd.json:
        return _write_json(session, views.laddrs_document(rows))
    session.out.write(reports.laddr_listing(rows, cmd.view.numeric))
    return 0


_LISTINGS = {"list": list_table, "save": save, "get-laddr": list_laddrs}


# ------------------------------------------------------------------ one command
def execute(session: Session, cmd: Command) -> int:
    """Run one parsed (and checked) command; returns the exit status."""
    if cmd.name == "help":
        session.out.write(usage())
        return 0
    if cmd.name == "version":
        session.out.write(version_line())
        return 0
    try:
        listing = _LISTINGS.get(cmd.name)
        if listing is not None:
            return listing(session, cmd)
        req = request_of(cmd)
        assert req is not None, cmd.name
        session.ipvs.do(req)
        return 0
    except (NotLoaded, PermissionDenied):
        raise
    except IPVSError as exc:
        session.err.write(f"{exc}\n")
        return EXIT_LIST if cmd.name in _LISTINGS else EXIT_KERNEL


def restore(session: Session, stream: TextIO) -> int:
    """``-R``: every line of ``ipvsadm -S`` output (ours or C's), pipelined.

    As ipvsadm: lines are split at blanks, the word ``ipvsadm`` is dropped,
    a line that cannot be parsed stops the restore (lines before it are
    applied), a refused line is reported and the next goes on, and the exit
    status is that of the last line.  Changes wait in ``pending`` until a
    batch is full or a line needs the table as it is (a listing).
    """
    pending: list[Request] = []
    result = 0

    def flush() -> int:
        status = 0
        if pending:
            for error in session.ipvs.run(pending):
                if error is not None:
                    session.err.write(f"{error}\n")
                status = EXIT_KERNEL if error is not None else 0
            pending.clear()
        return status

    for number, line in enumerate(stream, start=1):
        words = [w for w in line.split() if w not in ("ipvsadm", PROG)]
        if not words:
            continue
        try:
            cmd = parse(words)
            if cmd.name == "restore":
                raise UsageError("-R inside -R input", EXIT_TRYHELP, tryhelp=True)
            check(cmd)
        except UsageError as exc:
            flush()
            session.err.write(f"line {number}: {exc}\n")
            if exc.soft:
                result = exc.code
                continue
            if exc.tryhelp:
                session.tryhelp()
            return exc.code
        req = request_of(cmd)
        if req is None:
            flush()
            result = execute(session, cmd)
            continue
        try:
            session.ipvs.check_supported(req)
        except Unsupported as exc:
            flush()
            session.err.write(f"line {number}: {exc}\n")
            result = EXIT_KERNEL
            continue
        pending.append(req)
        if len(pending) >= session.ipvs.batch_size:
            result = flush()
    if pending:
        result = flush()
    return result


# ------------------------------------------------------------------ help
def version_line() -> str:
    from ipvsadm_py import __version__

    return (f"{PROG} {__version__} (ipvsadm v1.31 dialect, with FULLNAT/SYNPROXY "
            "extensions; generic netlink)\n")


def usage() -> str:
    from ipvsadm_py.cli.help import HELP

    return version_line() + HELP.format(prog=PROG)
