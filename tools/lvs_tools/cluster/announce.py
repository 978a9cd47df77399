"""Announce only what can be served: the VIPs on the dummy interface.

BIRD's ``direct`` protocol turns every address of the dummy interface into
a host route it exports (bird.py); this module only adds and removes those
addresses.  A VIP is put there while every IPVS service on that address has
at least one real server of weight > 0 (health checkers, keepalived or an
operator, set a failed server's weight to 0 or remove it), and while the
balancer is not drained (a marker file).  The VIP stays a local address of
the balancer anyway through its own route (``keep_local``): IPVS takes the
packets of sessions it still has while the routers move away.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Iterable

from netaddr import IPAddress
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ipvsadm_py import IPVS
from ipvsadm_py.config.desired import Balancer, Cluster
from ipvsadm_py.model import Dest, Service

STATE_DIR = Path("/run/lvs-cluster")
# Another lvs-cluster (the watcher and a drain) may have done the same change
# a moment before: the address already there, or already gone.
DONE_BEFORE = {"add": 17, "del": 99}          # EEXIST, EADDRNOTAVAIL
LOCAL_PROTO = 4          # RTPROT_STATIC: kept apart from the kernel's own local routes


def drained_marker(state_dir: Path) -> Path:
    return state_dir / "drained"


def servable(table: Iterable[tuple[Service, list[Dest]]], vips: Iterable[IPAddress]
             ) -> dict[IPAddress, bool]:
    """VIP -> whether it can be served: it has services, and each of them a
    real server of weight > 0."""
    out = {}
    for vip in vips:
        mine = [dests for svc, dests in table if svc.addr == vip and not svc.fwmark]
        out[vip] = bool(mine) and all(any(d.weight > 0 for d in dests) for dests in mine)
    return out


def sessions(table: Iterable[tuple[Service, list[Dest]]], vips: Iterable[IPAddress]
             ) -> tuple[int, int]:
    """(active, inactive) connections of the services on ``vips``."""
    vips = set(vips)
    active = inactive = 0
    for svc, dests in table:
        if svc.addr in vips:
            active += sum(d.active_conns for d in dests)
            inactive += sum(d.inact_conns for d in dests)
    return active, inactive


@dataclasses.dataclass
class Announcer:
    """The dummy interface of one balancer and the VIPs on it."""

    cluster: Cluster
    balancer: Balancer
    state_dir: Path = STATE_DIR

    @property
    def drained(self) -> bool:
        return drained_marker(self.state_dir).exists()

    def set_drained(self, drained: bool) -> None:
        marker = drained_marker(self.state_dir)
        if drained:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text("drained by lvs-cluster drain\n")
        else:
            marker.unlink(missing_ok=True)

    def _index(self, ipr: IPRoute) -> int:
        name = self.cluster.interface
        found = ipr.link_lookup(ifname=name)
        if not found:
            ipr.link("add", ifname=name, kind="dummy")
            found = ipr.link_lookup(ifname=name)
        ipr.link("set", index=found[0], state="up")
        return found[0]

    def announced(self) -> set[IPAddress]:
        """The VIPs on the dummy interface now."""
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=self.cluster.interface)
            if not found:
                return set()
            return {IPAddress(a.get_attr("IFA_ADDRESS"))
                    for a in ipr.get_addr(index=found[0])} & set(self.balancer.vips)

    def keep_local(self, ipr: IPRoute | None = None) -> None:
        """Every VIP of the balancer a local address (a ``local`` route of our
        own in the local table), announced or not.  ``ipr``: a routing
        socket to use, else one is opened for this call."""
        if ipr is None:
            with IPRoute() as own:
                self.keep_local(own)
            return
        lo = ipr.link_lookup(ifname="lo")[0]
        for vip in self.balancer.vips:
            family = 2 if vip.version == 4 else 10
            ipr.route("replace", dst=str(vip), dst_len=32 if vip.version == 4 else 128,
                      type="local", table=255, proto=LOCAL_PROTO, family=family,
                      oif=lo, scope=254)

    def sync(self, ipvs: IPVS | None, ipr: IPRoute | None = None) -> dict[IPAddress, bool]:
        """Put the VIPs that may be announced on the interface, take the
        others off; returns VIP -> announced.  ``ipvs`` None: IPVS is not
        loaded, nothing can be served.  ``ipr``: a routing socket to reuse
        (a watcher's), else one is opened for this call."""
        health = servable(ipvs.table(stats=False) if ipvs is not None else [],
                          self.balancer.vips)
        want = {vip: ok and not self.drained for vip, ok in health.items()}
        if ipr is None:
            with IPRoute() as own:
                self._put(own, want)
        else:
            self._put(ipr, want)
        return want

    def _put(self, ipr: IPRoute, want: dict[IPAddress, bool]) -> None:
        index = self._index(ipr)
        have = {IPAddress(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr(index=index)}
        for vip, on in want.items():
            plen = 32 if vip.version == 4 else 128
            if on == (vip in have):
                continue
            verb = "add" if on else "del"
            extra = {"flags": 0x02} if on and vip.version == 6 else {}   # IFA_F_NODAD
            try:
                ipr.addr(verb, index=index, address=str(vip), prefixlen=plen, **extra)
            except NetlinkError as exc:
                if exc.code != DONE_BEFORE[verb]:
                    raise

    def wait_sessions(self, ipvs: IPVS, deadline: float,
                      clock: Callable[[], float] = time.monotonic,
                      interval: float = 0.5) -> tuple[int, int, float]:
        """Wait until the VIPs' active sessions are 0 or ``deadline`` seconds
        passed: (active, inactive, seconds waited)."""
        start = clock()
        while True:
            active, inactive = sessions(ipvs.table(), self.balancer.vips)
            waited = clock() - start
            if active == 0 or waited >= deadline:
                return active, inactive, waited
            time.sleep(interval)
