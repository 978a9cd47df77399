"""From the live state to the desired one: a plan of the fewest steps.

:func:`plan` returns only the steps that change something, and edits
wherever the kernel allows them (a changed weight or scheduler never
recreates a service, so live sessions stay); applying the same file twice
plans nothing.  :func:`apply_plan` carries a plan out, pipelined.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from ipvsadm_py.api import IPVS
from ipvsadm_py.config.desired import Desired, ServiceSpec
from ipvsadm_py.errors import InvalidInput, IPVSError
from ipvsadm_py.model import Daemon, Dest, Forward, LocalAddress, Service, Timeouts
from ipvsadm_py.nft import AccessLists, NftError, Transaction
from ipvsadm_py.procfs import list_sysctls, write_sysctl
from ipvsadm_py.verbs import Request


@dataclasses.dataclass
class Step:
    """One change of a plan: a request to the kernel or a sysctl write."""

    action: str            # add | edit | delete
    what: str              # service | dest | laddr | timeouts | sysctl | daemon | allow | deny
    text: str
    request: Request | None = None
    sysctl: tuple[str, int] | None = None

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "what": self.what, "text": self.text}


@dataclasses.dataclass
class LiveState:
    """What the kernel has now."""

    services: list[tuple[Service, list[Dest]]]
    laddrs: dict[tuple, list[LocalAddress]]
    timeouts: Timeouts
    sysctls: dict[str, int]
    daemons: list[Daemon]


def read_live(ipvs: IPVS) -> LiveState:
    table = ipvs.table()
    laddrs: dict[tuple, list[LocalAddress]] = {}
    if ipvs.fullnat_supported():
        laddrs = {svc.key: ipvs.laddrs(svc) for svc, _ in table if not svc.fwmark}
    return LiveState(table, laddrs, ipvs.timeouts(), list_sysctls(), ipvs.daemons())


# ---------------------------------------------------------------- differences
def _service_differs(want: Service, have: Service) -> bool:
    """Whether a service needs an edit (what an edit can set)."""
    def settable(svc: Service) -> tuple:
        return (svc.scheduler, svc.persistent, svc.onepacket, svc.synproxy, svc.sched_flags,
                svc.timeout if svc.persistent else 0, svc.netmask if svc.persistent else 0,
                svc.pe_name)
    return settable(want) != settable(have)


def _dest_differs(want: Dest, have: Dest) -> bool:
    fields = ["forward", "weight", "u_threshold", "l_threshold"]
    if want.forward == Forward.TUNNEL:
        fields += ["tun_type", "tun_port", "tun_csum"]
    return any(getattr(want, f) != getattr(have, f) for f in fields)


def _daemon_differs(want: Daemon, have: Daemon) -> bool:
    """Whether a running daemon differs from the wanted one in what the file
    sets (unset group, port, ttl and maxlen are the kernel's defaults)."""
    if (want.mcast_ifn, want.syncid) != (have.mcast_ifn, have.syncid):
        return True
    for field in ("sync_maxlen", "mcast_port", "mcast_ttl"):
        if getattr(want, field) and getattr(want, field) != getattr(have, field):
            return True
    return want.mcast_group is not None and want.mcast_group != have.mcast_group


def _describe_service(svc: Service) -> str:
    words = [svc.describe(), svc.scheduler]
    if svc.persistent:
        words.append(f"persistent {svc.timeout}")
    if svc.synproxy:
        words.append("synproxy")
    return " ".join(words)


def _describe_dest(svc: Service, d: Dest) -> str:
    return f"{svc.describe()} -> {d.describe()} {d.forward.value} weight {d.weight}"


# ---------------------------------------------------------------- planning
def plan(desired: Desired, live: LiveState, prune: bool = True) -> list[Step]:
    """The steps that turn the live state into the desired one (in order)."""
    steps = _sysctl_steps(desired.sysctls, live.sysctls)
    if desired.timeouts is not None:
        steps += _timeout_steps(desired.timeouts, live.timeouts)
    have = {svc.key: (svc, dests) for svc, dests in live.services}
    want_keys = {spec.service.key for spec in desired.services}
    if prune:
        steps += [Step("delete", "service", svc.describe(), Request.delete_service(svc))
                  for svc, _ in live.services if svc.key not in want_keys]
    for spec in desired.services:
        steps += _service_steps(spec, have.get(spec.service.key),
                                live.laddrs.get(spec.service.key, []), prune)
    if desired.daemons is not None:
        steps += _daemon_steps(desired.daemons, live.daemons, prune)
    return steps


def _sysctl_steps(want: dict[str, int], have: dict[str, int]) -> list[Step]:
    steps = []
    for name, value in want.items():
        if name not in have:
            raise InvalidInput(f"sysctl net.ipv4.vs.{name} does not exist in this kernel")
        if have[name] != value:
            steps.append(Step("edit", "sysctl", f"net.ipv4.vs.{name} = {value} "
                              f"(was {have[name]})", sysctl=(name, value)))
    return steps


def _timeout_steps(t: Timeouts, have: Timeouts) -> list[Step]:
    """0 (or absent) in the file leaves a timeout as it is."""
    want = Timeouts(t.tcp or have.tcp, t.tcp_fin or have.tcp_fin, t.udp or have.udp)
    if want == have:
        return []
    return [Step("edit", "timeouts", f"timeouts tcp {want.tcp} tcpfin {want.tcp_fin} "
                 f"udp {want.udp}", Request.set_timeouts(want))]


def _service_steps(spec: ServiceSpec, current: tuple[Service, list[Dest]] | None,
                   live_laddrs: list[LocalAddress], prune: bool) -> list[Step]:
    svc = spec.service
    steps: list[Step] = []
    live_dests: dict[tuple, Dest] = {}
    if current is None:
        steps.append(Step("add", "service", _describe_service(svc),
                          Request.add_service(svc)))
    else:
        live_dests = {d.key: d for d in current[1]}
        if _service_differs(svc, current[0]):
            steps.append(Step("edit", "service", _describe_service(svc),
                              Request.edit_service(svc)))
    have_la = {int(la.addr) for la in live_laddrs}
    steps += [Step("add", "laddr", f"{svc.describe()} local address {addr}",
                   Request.add_laddr(svc, LocalAddress(addr)))
              for addr in spec.laddrs if int(addr) not in have_la]
    want_keys = {d.key for d in spec.dests}
    if prune:
        steps += [Step("delete", "dest", _describe_dest(svc, d), Request.delete_dest(svc, d))
                  for key, d in live_dests.items() if key not in want_keys]
    for d in spec.dests:
        old = live_dests.get(d.key)
        if old is None:
            steps.append(Step("add", "dest", _describe_dest(svc, d), Request.add_dest(svc, d)))
        elif _dest_differs(d, old):
            steps.append(Step("edit", "dest", _describe_dest(svc, d),
                              Request.edit_dest(svc, d)))
    if prune:
        want_la = {int(a) for a in spec.laddrs}
        steps += [Step("delete", "laddr", f"{svc.describe()} local address {la.describe()}",
                       Request.delete_laddr(svc, la))
                  for la in live_laddrs if int(la.addr) not in want_la]
    return steps


def _daemon_steps(want: list[Daemon], have: list[Daemon], prune: bool) -> list[Step]:
    steps = []
    have_by = {d.state: d for d in have}
    want_by = {d.state: d for d in want}
    for state, d in have_by.items():
        w = want_by.get(state)
        if (w is None and prune) or (w is not None and _daemon_differs(w, d)):
            steps.append(Step("delete", "daemon", f"{state} sync daemon",
                              Request.stop_daemon(d)))
    for state, w in want_by.items():
        d = have_by.get(state)
        if d is None or _daemon_differs(w, d):
            steps.append(Step("add", "daemon", f"{state} sync daemon on {w.mcast_ifn} "
                              f"syncid {w.syncid}", Request.start_daemon(w)))
    return steps


def list_plan(desired: Desired, lists: AccessLists, prune: bool = True
              ) -> tuple[list[Step], Transaction]:
    """The allow/deny lists' part of a plan: its steps (for the plan's
    text) and the one nftables transaction that carries them out.  A file
    that does not own the lists (keepalived.conf) changes none; a YAML file
    without lists, on a host without nftables, needs none."""
    wanted = desired.access_lists
    if not desired.owns_lists or (not wanted and not lists.nft.available()):
        return [], Transaction()
    try:
        tx = lists.plan(wanted, prune=prune)
    except NftError:
        if wanted:
            raise
        return [], Transaction()      # no lists wanted, none readable: none to prune
    return [Step(action, what, text) for action, what, text in tx.steps], tx


def plan_text(steps: Sequence[Step]) -> str:
    if not steps:
        return "nothing to change\n"
    marks = {"add": "+", "edit": "~", "delete": "-"}
    return "".join(f"{marks[s.action]} {s.what} {s.text}\n" for s in steps)


def apply_plan(ipvs: IPVS, steps: Sequence[Step]) -> list[str]:
    """Carry out a plan (kernel requests pipelined); returns the failures."""
    failures = []
    for step in steps:
        if step.request is not None:
            ipvs.check_supported(step.request)
    for step in steps:
        if step.sysctl is not None:
            try:
                write_sysctl(*step.sysctl)
            except IPVSError as exc:
                failures.append(f"{step.text}: {exc}")
    kernel = [s for s in steps if s.request is not None]
    for step, error in zip(kernel, ipvs.run([s.request for s in kernel])):
        if error is not None:
            failures.append(f"{step.action} {step.what} {step.text}: {error}")
    return failures

