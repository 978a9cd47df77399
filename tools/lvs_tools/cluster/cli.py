"""lvs-cluster: this balancer's part of the cluster (docs/cluster.md).

    lvs-cluster render FILE [--node N]    print BIRD's configuration for balancer N
    lvs-cluster apply FILE [--start]      check it with BIRD, install it, reconfigure
                                          BIRD (or start it), announce what can be served
    lvs-cluster sync FILE [--every S]     announce / withdraw VIPs by health (once, or
                                          every S seconds)
    lvs-cluster status FILE               BGP sessions, VIPs announced or not, sessions
    lvs-cluster drain FILE [--deadline S] withdraw every VIP, wait for the sessions
    lvs-cluster undrain FILE              announce again what can be served

FILE is the YAML of ``ipvsadm-py apply`` with a ``cluster:`` section; the
balancer is ``--node`` (default: the host name).  Exit status: 0 success,
1 drain deadline passed with sessions left, 2 bad input (nothing changed).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path
from typing import Sequence, TextIO

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ipvsadm_py import IPVS, config
from ipvsadm_py.errors import IPVSError, NotLoaded
from ipvsadm_py.config.desired import Balancer, Cluster
from lvs_tools.cluster.announce import STATE_DIR, Announcer, sessions
from lvs_tools.cluster.bird import CONF_PATH, SOCKET_PATH, Bird, BirdError, render


class UsageError(Exception):
    pass


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("file", help="the YAML configuration with a cluster: section")
    common.add_argument("--node", help="this balancer's name (default: the host name)")
    common.add_argument("--conf", type=Path, default=CONF_PATH,
                        help=f"BIRD's configuration file (default {CONF_PATH})")
    common.add_argument("--socket", type=Path, default=SOCKET_PATH,
                        help=f"BIRD's control socket (default {SOCKET_PATH})")
    common.add_argument("--state-dir", type=Path, default=STATE_DIR,
                        help=f"where the drained marker lives (default {STATE_DIR})")
    common.add_argument("--log", help="BIRD's log file (default: syslog)")
    top = argparse.ArgumentParser(prog="lvs-cluster", description="Balancers side by side "
                                  "behind ECMP routers, announced by BIRD (docs/cluster.md).")
    sub = top.add_subparsers(dest="command", required=True)
    sub.add_parser("render", parents=[common], help="print BIRD's configuration")
    apply = sub.add_parser("apply", parents=[common], help="check, install and load BIRD's "
                           "configuration; announce what can be served")
    apply.add_argument("--start", action="store_true", help="start BIRD if it is not running")
    apply.add_argument("--pidfile", type=Path, help="BIRD's pid file (with --start)")
    sync = sub.add_parser("sync", parents=[common], help="announce / withdraw VIPs by health")
    sync.add_argument("--every", type=float, help="repeat every so many seconds")
    sub.add_parser("status", parents=[common], help="sessions, VIPs, BGP")
    drain = sub.add_parser("drain", parents=[common], help="withdraw every VIP and wait "
                           "for the sessions to end")
    drain.add_argument("--deadline", type=float, default=300,
                       help="seconds to wait for active sessions (default 300)")
    sub.add_parser("undrain", parents=[common], help="announce again")
    return top


def _load(args: argparse.Namespace) -> tuple[Cluster, Balancer]:
    desired = config.load(args.file)
    if desired.cluster is None:
        raise UsageError(f"{args.file}: no cluster: section")
    name = args.node or socket.gethostname()
    try:
        return desired.cluster, desired.cluster.balancer(name)
    except KeyError:
        names = ", ".join(b.name for b in desired.cluster.balancers)
        raise UsageError(f"{args.file}: no balancer {name!r} (there are: {names})") from None


def _announce(ann: Announcer, out: TextIO) -> dict:
    with IPRoute() as ipr:
        ann.keep_local(ipr)
        with IPVS() as ipvs:
            state = ann.sync(ipvs, ipr)
    for vip, on in state.items():
        out.write(f"{vip}: {'announced' if on else 'withdrawn'}\n")
    return state


def main(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    args = parser().parse_args(list(argv))
    try:
        cluster, bal = _load(args)
        bird = Bird(args.conf, args.socket)
        ann = Announcer(cluster, bal, args.state_dir)
        if args.command == "render":
            out.write(render(cluster, bal, args.file, args.log))
            return 0
        if args.command == "apply":
            changed = bird.install(render(cluster, bal, args.file, args.log))
            if bird.running():
                out.write(f"{args.conf}: {'changed, ' if changed else ''}BIRD reconfigured\n")
            elif args.start:
                bird.start(args.pidfile)
                out.write(f"{args.conf}: BIRD started\n")
            else:
                out.write(f"{args.conf}: written; BIRD is not running (--start)\n")
            _announce(ann, out)
            return 0
        if args.command == "sync":
            _announce(ann, out)
            if args.every is not None:
                watch(ann, args.every, err)
            return 0
        if args.command == "status":
            return _status(bird, ann, out)
        if args.command == "drain":
            ann.set_drained(True)
            _announce(ann, out)
            with IPVS() as ipvs:
                active, inactive, waited = ann.wait_sessions(ipvs, args.deadline)
            out.write(f"drained {bal.name}: {active} active, {inactive} inactive sessions "
                      f"after {waited:.1f} s\n")
            return 0 if active == 0 else 1
        ann.set_drained(False)                       # undrain
        _announce(ann, out)
        return 0
    except (config.ConfigError, UsageError, BirdError) as exc:
        err.write(f"{exc}\nnothing was changed\n")
        return 2
    except (OSError, IPVSError, NetlinkError) as exc:
        err.write(f"{exc}\n")
        return 1


def watch(ann: Announcer, every: float, err: TextIO) -> None:
    """``sync --every``: a pass every ``every`` seconds, for ever, quiet
    while nothing goes wrong.  Its IPVS and routing sockets stay open
    between passes; after an error they are opened again at the next pass,
    and the error is said once.  IPVS not loaded (the module unloaded under
    it): nothing can be served, every VIP withdrawn."""
    ipvs: IPVS | None = None
    ipr: IPRoute | None = None
    said = ""
    while True:
        time.sleep(every)
        try:
            if ipr is None:
                ipr = IPRoute()
            if ipvs is None:
                try:
                    ipvs = IPVS()
                except NotLoaded:
                    pass
            ann.sync(ipvs, ipr)
            said = ""
        except (OSError, IPVSError, NetlinkError) as exc:
            if repr(exc) != said:
                err.write(f"lvs-cluster sync: {exc} (trying again every {every} s)\n")
                said = repr(exc)
            for sock in (ipvs, ipr):
                if sock is not None:
                    sock.close()
            ipvs = ipr = None


def _status(bird: Bird, ann: Announcer, out: TextIO) -> int:
    with IPVS() as ipvs:
        table = ipvs.table()
    active, inactive = sessions(table, ann.balancer.vips)
    announced = ann.announced()
    report = {"balancer": ann.balancer.name, "drained": ann.drained,
              "vips": {str(v): v in announced for v in ann.balancer.vips},
              "sessions": {"active": active, "inactive": inactive},
              "bird": bird.protocols() if bird.running() else None}
    out.write(json.dumps(report, indent=2) + "\n")
    return 0


def run() -> None:
    sys.exit(main(sys.argv[1:], sys.stdout, sys.stderr))
if __name__ == "__main__":
    run()
