"""``ipvsadm-py``: the ipvsadm command line on the ipvsadm_py library.

A thin layer: :mod:`ipvsadm_py.options` parses, :class:`ipvsadm_py.api.IPVS`
acts, :mod:`ipvsadm_py.fmt` writes.  Subcommands beyond ipvsadm:
``apply FILE``, ``export``, ``completion``.  Exit statuses are ipvsadm's:
0 done, 1 a listing failed, 2 bad input (or IPVS unavailable), 255 the
kernel refused (or the command line could not be parsed at all).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from ipvsadm_py import __version__, fmt, model, nl
from ipvsadm_py.api import IPVS, Op, ops
from ipvsadm_py.errors import IPVSError, NotLoaded, PermissionDenied, Unsupported
from ipvsadm_py.options import EXIT_FAIL, EXIT_TRYHELP, Entry, UsageError, check, parse

TYPE_CHECKING = False     # typing only for type checkers (see wire.py)
if TYPE_CHECKING:
    from typing import TextIO

PROG = "ipvsadm-py"
CONN_PROC = "/proc/net/ip_vs_conn"
EXT_STATS_PROC = "/proc/net/ip_vs_ext_stats"
EXIT_LIST = 1
EXIT_KERNEL = 255


class Context:
    """Streams, the IPVS handle (opened on first use) and global options."""

    def __init__(self, out: TextIO, err: TextIO, load: bool = False) -> None:
        self.out, self.err, self.load = out, err, load
        self._ipvs: IPVS | None = None

    @property
    def ipvs(self) -> IPVS:
        if self._ipvs is None:
            self._ipvs = IPVS(load=self.load)
        return self._ipvs

    def close(self) -> None:
        if self._ipvs is not None:
            self._ipvs.close()


def tryhelp(ctx: Context) -> None:
    ctx.err.write(f"Try `{PROG} -h' or '{PROG} --help' for more information.\n")


# ------------------------------------------------------------------ ops
_OP_BUILDERS = {
    "add": lambda e: ops.add_service(e.svc), "edit": lambda e: ops.edit_service(e.svc),
    "del": lambda e: ops.delete_service(e.svc), "flush": lambda e: ops.flush(),
    "zero": lambda e: ops.zero(e.svc if "service-address" in e.options else None),
    "adddest": lambda e: ops.add_dest(e.svc, e.dest),
    "editdest": lambda e: ops.edit_dest(e.svc, e.dest),
    "deldest": lambda e: ops.delete_dest(e.svc, e.dest),
    "timeout": lambda e: ops.set_timeouts(e.timeouts or model.Timeouts()),
    "startd": lambda e: ops.start_daemon(e.daemon),
    "stopd": lambda e: ops.stop_daemon(e.daemon),
    "addladdr": lambda e: ops.add_laddr(e.svc, e.laddr),
    "delladdr": lambda e: ops.delete_laddr(e.svc, e.laddr),
}


def entry_op(e: Entry) -> Op | None:
    """The kernel operation of a changing command (None for the others)."""
    build = _OP_BUILDERS.get(e.cmd)
    return build(e) if build else None


# ------------------------------------------------------------------ listing
def _laddr_map(ctx: Context, table) -> dict[tuple, list[model.LocalAddress]] | None:
    """Local addresses per service, when the module has FULLNAT (else None)."""
    if not ctx.ipvs.fullnat_supported():
        return None
    return {svc.key: ctx.ipvs.laddrs(svc) for svc, _ in table if not svc.fwmark}


def do_list(ctx: Context, e: Entry) -> int:
    o = e.options
    if "connection" in o:
        return list_connections(ctx, e)
    if "timeout" in o:
        t = ctx.ipvs.timeouts()
        ctx.out.write(fmt.dumps(t.to_dict()) if e.json else fmt.timeouts(t))
        return 0
    if "daemon" in o:
        ds = ctx.ipvs.daemons()
        ctx.out.write(fmt.dumps([d.to_dict() for d in ds]) if e.json else fmt.daemons(ds))
        return 0
    if "ext-stats" in o:
        return list_ext_stats(ctx, e)
    stats = e.json or e.fmt.stats or e.fmt.rate
    if "service-address" in o:
        svc = ctx.ipvs.service(e.svc)
        table = ctx.ipvs.table([svc], stats)
        info = None
    else:
        info = ctx.ipvs.info()
        table = ctx.ipvs.table(stats=stats)
    if e.json:
        ctx.out.write(fmt.dumps(fmt.table_json(info, table, _laddr_map(ctx, table))))
    else:
        ctx.out.write(fmt.listing(info, table, e.fmt))
    return 0


def list_connections(ctx: Context, e: Entry) -> int:
    try:
        with open(CONN_PROC) as stream:
            text = stream.read()
    except OSError:
        ctx.err.write(f"cannot open file {CONN_PROC}\n")
        return EXIT_LIST
    if e.json:
        ctx.out.write(fmt.dumps(fmt.connections_json(text)))
    else:
        ctx.out.write(fmt.connections(text, e.fmt))
    return 0


def list_ext_stats(ctx: Context, e: Entry) -> int:
    try:
        with open(EXT_STATS_PROC) as stream:
            text = stream.read()
    except OSError:
        ctx.err.write(f"{EXT_STATS_PROC} is missing: the FULLNAT/SYNPROXY side of this "
                      "ip_vs module is not there\n")
        return EXIT_LIST
    if e.json:
        counters = {}
        for line in text.splitlines():
            tok = line.split()
            if len(tok) >= 2 and tok[-1].isdigit():
                counters[tok[0]] = int(tok[-1])
        ctx.out.write(fmt.dumps(counters))
    else:
        ctx.out.write(fmt.ext_stats(text))
    return 0


def do_save(ctx: Context, e: Entry) -> int:
    table = ctx.ipvs.table(stats=False)
    f = fmt.Format(numeric=e.fmt.numeric, rule=True)
    ctx.out.write(fmt.listing(None, table, f, _laddr_map(ctx, table)))
    return 0


def do_get_laddr(ctx: Context, e: Entry) -> int:
    if not ctx.ipvs.fullnat_supported():
        raise Unsupported("the kernel does not support local addresses (the FULLNAT side "
                          "of this ip_vs module is missing)")
    if "service-address" in e.options:
        svcs = [ctx.ipvs.service(e.svc)]
    else:
        svcs = fmt.sort_services([s for s in ctx.ipvs.services() if not s.fwmark])
    rows = [(svc, ctx.ipvs.laddrs(svc)) for svc in svcs]
    if e.json:
        ctx.out.write(fmt.dumps([{"service": svc.to_dict(),
                                  "laddrs": [la.to_dict() for la in las]}
                                 for svc, las in rows]))
    else:
        ctx.out.write(fmt.laddr_listing(rows, e.fmt.numeric))
    return 0


# ------------------------------------------------------------------ one command
def execute(ctx: Context, e: Entry) -> int:
    """Run one parsed (and checked) command; returns the exit status."""
    if e.cmd == "help":
        ctx.out.write(usage())
        return 0
    if e.cmd == "version":
        ctx.out.write(version_line())
        return 0
    try:
        if e.cmd == "list":
            return do_list(ctx, e)
        if e.cmd == "save":
            return do_save(ctx, e)
        if e.cmd == "getladdr":
            return do_get_laddr(ctx, e)
        op = entry_op(e)
        assert op is not None, e.cmd
        ctx.ipvs.do(op)
        return 0
    except (NotLoaded, PermissionDenied):
        raise
    except IPVSError as exc:
        ctx.err.write(f"{exc}\n")
        return EXIT_LIST if e.cmd in ("list", "save", "getladdr") else EXIT_KERNEL


def restore(ctx: Context, stream: TextIO) -> int:
    """``-R``: every line of ``ipvsadm -S`` output (ours or C's), pipelined.

    As ipvsadm: lines are split at blanks, the word ``ipvsadm`` is dropped,
    a line that cannot be parsed stops the restore (lines before it are
    applied), a refused line is reported and the next goes on, and the exit
    status is that of the last line.
    """
    pending: list[Op] = []
    result = 0

    def flush() -> int:
        status = 0
        if pending:
            for error in ctx.ipvs.run(pending):
                if error is not None:
                    ctx.err.write(f"{error}\n")
                status = EXIT_KERNEL if error is not None else 0
            pending.clear()
        return status

    for number, line in enumerate(stream, start=1):
        words = [w for w in line.split() if w not in ("ipvsadm", PROG)]
        if not words:
            continue
        try:
            e = parse(words, reading_stdin=True)
            if e.cmd == "restore":
                raise UsageError("-R inside -R input", EXIT_TRYHELP, tryhelp=True)
            check(e)
        except UsageError as exc:
            flush()
            ctx.err.write(f"line {number}: {exc}\n")
            if exc.soft:
                result = exc.code
                continue
            if exc.tryhelp:
                tryhelp(ctx)
            return exc.code
        op = entry_op(e)
        if op is not None:
            try:
                ctx.ipvs.check_op(op)
            except Unsupported as exc:
                flush()
                ctx.err.write(f"line {number}: {exc}\n")
                result = EXIT_KERNEL
                continue
            pending.append(op)
            if len(pending) >= nl.BATCH:
                result = flush()
            continue
        flush()
        result = execute(ctx, e)
    if pending:
        result = flush()
    return result


# ------------------------------------------------------------------ main
def version_line() -> str:
    return (f"{PROG} {__version__} (ipvsadm v1.31 dialect, with FULLNAT/SYNPROXY "
            "extensions; generic netlink)\n")


def usage() -> str:
    from ipvsadm_py.helptext import HELP

    return version_line() + HELP.format(prog=PROG)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None, stdin: TextIO | None = None) -> int:
    """The ``ipvsadm-py`` command; returns the exit status.  The streams
    default to the process's (tests pass their own)."""
    # A short-lived process holding many small objects (10,000 rules):
    # the cyclic collector would only cost time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _main(list(sys.argv[1:] if argv is None else argv), out or sys.stdout,
                     err or sys.stderr, stdin or sys.stdin)
    finally:
        if collecting:
            gc.enable()


def _main(argv: list[str], out: TextIO, err: TextIO, stdin: TextIO) -> int:
    if argv and argv[0] in ("apply", "validate", "export", "completion"):
        from ipvsadm_py import config_cli

        return config_cli.main(argv, out, err)
    load = "--load" in argv
    argv = [a for a in argv if a != "--load"]
    ctx = Context(out, err, load)
    try:
        if not argv:
            e = Entry(cmd="list")
            return execute(ctx, e)
        try:
            e = parse(argv)
            check(e)
        except UsageError as exc:
            err.write(f"{exc}\n")
            if exc.tryhelp:
                tryhelp(ctx)
            return exc.code
        if e.cmd == "restore":
            return restore(ctx, stdin)
        return execute(ctx, e)
    except NotLoaded as exc:
        err.write(f"{exc}\n")
        return EXIT_FAIL
    except PermissionDenied as exc:
        err.write(f"{exc}\n")
        return EXIT_KERNEL
    except Unsupported as exc:
        err.write(f"{exc}\n")
        return EXIT_KERNEL
    except IPVSError as exc:
        err.write(f"{exc}\n")
        return EXIT_KERNEL
    except BrokenPipeError:
        return 0
    finally:
        ctx.close()


def entry_point() -> None:
    """Console script wrapper: exit with main()'s status."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
