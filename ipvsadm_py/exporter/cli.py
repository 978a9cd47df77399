"""``lvs-exporter``: the command line around the collectors.

Start-up order matters with ``--netns``: the listening socket is made in
the namespace the exporter was started in (where Prometheus reaches it),
then the process enters the named namespace, and only then do threads
start (they inherit it).  Every later netlink socket and every read of
``/proc/net`` and ``/proc/sys/net`` is then the named namespace's.
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import ThreadingWSGIServer

from ipvsadm_py import procfs
from ipvsadm_py.api import IPVS
from ipvsadm_py.errors import IPVSError, NotLoaded
from ipvsadm_py.config.desired import ConfigError
from ipvsadm_py.exporter import text
from ipvsadm_py.exporter.health import KeepalivedConf
from ipvsadm_py.exporter.collect import BalancerCollector, ToaCollector

DEFAULT_LISTEN = "0.0.0.0:9291"
#: The exporter's CPU priority unless told otherwise: the lowest.  A scrape
#: is CPU work that may wait; what that did (and did not) change in the
#: emulated guest: docs/monitoring/README.md, "Cost of a scrape".
DEFAULT_NICE = 19
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000


class UsageError(Exception):
    """Bad input on the command line or at start: message, exit status 2."""


class StartError(Exception):
    """The exporter cannot start here: message, exit status 1."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lvs-exporter",
        description="Prometheus exporter of IPVS (FULLNAT, SYNPROXY) on a balancer, "
                    "or of toa.ko on a real server. Serves /metrics; reads the kernel "
                    "at each scrape.")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDR:PORT",
                   help=f"address and port to serve on (default {DEFAULT_LISTEN}; "
                        "[::]:PORT for IPv6)")
    p.add_argument("--netns", metavar="NAME",
                   help="read the IPVS table of the named network namespace "
                        f"({NETNS_DIR}/NAME, as made by ip netns add)")
    p.add_argument("--role", choices=("lb", "rs"), default="lb",
                   help="lb: IPVS on a balancer (default); rs: toa.ko on a real server")
    p.add_argument("--keepalived-conf", metavar="PATH",
                   help="where keepalived runs: its configuration file; each real server "
                        "of it gets lvs_real_server_healthy (1 if in the table with a "
                        "weight, 0 if keepalived took it out)")
    p.add_argument("--nice", type=int, default=DEFAULT_NICE, metavar="N",
                   help=f"CPU priority of the exporter, -20 to 19 (default {DEFAULT_NICE}, "
                        "the lowest; below the current value needs CAP_SYS_NICE)")
    p.add_argument("--once", action="store_true",
                   help="write one scrape to standard output and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    return p


def split_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[V6]:PORT`` into its parts (UsageError if bad)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text}: expected ADDR:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def open_netns(name: str) -> int:
    """A descriptor of ``/run/netns/NAME`` (UsageError if there is none)."""
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(f"--netns {name!r}: not a namespace name")
    try:
        return os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UsageError(f"--netns {name}: no such network namespace "
                         f"({NETNS_DIR}/{name} does not exist)") from None
    except OSError as exc:
        raise StartError(f"--netns {name}: {exc.strerror}") from None


def enter_netns(fd: int, name: str) -> None:
    """Move this (still single-threaded) process into the namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise StartError(f"--netns {name}: cannot enter it: {os.strerror(err)}")
    os.close(fd)


def set_nice(value: int) -> None:
    """This process's (still single-threaded) CPU priority; its threads
    inherit it."""
    if not -20 <= value <= 19:
        raise UsageError(f"--nice {value}: expected -20 to 19")
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
    except PermissionError:
        raise StartError(f"--nice {value}: not allowed below the current "
                         f"{os.getpriority(os.PRIO_PROCESS, 0)} without CAP_SYS_NICE") from None


def check_ipvs() -> None:
    """Fail at start, with the library's words, if IPVS cannot be read
    (without loading ip_vs: see collect.BalancerCollector.read)."""
    try:
        if not procfs.module_loaded("ip_vs"):
            raise NotLoaded("ip_vs is not loaded")
        with IPVS() as ipvs:
            ipvs.info()
    except NotLoaded:
        raise StartError("IPVS is not loaded (no IPVS generic netlink family): load ip_vs "
                         "(modprobe ip_vs) before starting lvs-exporter") from None
    except IPVSError as exc:
        raise StartError(str(exc)) from None


def collector_for(args: argparse.Namespace) -> BalancerCollector | ToaCollector:
    """The role's collector (UsageError: a keepalived configuration that
    cannot be read, or given for the real-server role)."""
    if args.role == "rs":
        if args.keepalived_conf:
            raise UsageError("--keepalived-conf is for the balancer (--role lb)")
        return ToaCollector()
    conf = None
    if args.keepalived_conf:
        conf = KeepalivedConf(args.keepalived_conf)
        try:
            conf.check()
        except OSError as exc:
            raise UsageError(f"--keepalived-conf {args.keepalived_conf}: "
                             f"{exc.strerror}") from None
        except ConfigError as exc:
            raise UsageError(f"--keepalived-conf {args.keepalived_conf}: {exc}") from None
    return BalancerCollector(keepalived=conf)


def scrape_text(collector: BalancerCollector | ToaCollector) -> str:
    """One scrape in the text format (read now)."""
    return "".join(collector.families().lines())


def metrics_app(collector: BalancerCollector | ToaCollector):
    """The WSGI application: every GET path (but /favicon.ico) is a scrape
    in the text format 0.0.4, gzip-compressed (fastest level) when the
    client accepts it, as Prometheus does.  The text is written by
    :mod:`.text`, not by the client library's exposition (see there why)."""

    def app(environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [f"# HTTP 405: {method}; use GET\n".encode()]
        if environ.get("PATH_INFO") == "/favicon.ico":
            start_response("200 OK", [])
            return [b""]
        body = scrape_text(collector).encode()
        headers = [("Content-Type", text.CONTENT_TYPE)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body if method == "GET" else b""]
    return app


class _QuietHandler(WSGIRequestHandler):
    """No line on stderr per scrape."""

    def log_message(self, format: str, *args: object) -> None:   # noqa: A002
        pass


def serve(args: argparse.Namespace, err: TextIO) -> None:
    host, port = split_listen(args.listen)
    fd = open_netns(args.netns) if args.netns else None
    server_class = ThreadingWSGIServer
    if ":" in host:
        import socket

        class V6Server(ThreadingWSGIServer):
            address_family = socket.AF_INET6
        server_class = V6Server
    collector = collector_for(args)
    try:
        httpd = make_server(host, port, metrics_app(collector), server_class,
                            handler_class=_QuietHandler)
    except OSError as exc:
        raise StartError(f"--listen {args.listen}: {exc.strerror}") from None
    if fd is not None:
        enter_netns(fd, args.netns)
    if args.role == "lb":
        check_ipvs()
    where = f" (network namespace {args.netns})" if args.netns else ""
    print(f"lvs-exporter: serving /metrics on {args.listen} for the "
          f"{'real server' if args.role == 'rs' else 'balancer'}{where}", file=err, flush=True)
    httpd.serve_forever()


def once(args: argparse.Namespace, out: TextIO) -> None:
    collector = collector_for(args)
    if args.netns:
        enter_netns(open_netns(args.netns), args.netns)
    if args.role == "lb":
        check_ipvs()
    out.write(scrape_text(collector))


def main(argv: Sequence[str] | None = None, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """The ``lvs-exporter`` command; returns the exit status (2: bad
    options, 1: cannot start here)."""
    out, err = out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="lvs-exporter: %(message)s", stream=err)
    try:
        set_nice(args.nice)
        if args.once:
            once(args, out)
        else:
            serve(args, err)
    except UsageError as exc:
        print(f"lvs-exporter: {exc}", file=err)
        return 2
    except StartError as exc:
        print(f"lvs-exporter: {exc}", file=err)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
