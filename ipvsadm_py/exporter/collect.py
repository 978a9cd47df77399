"""The collectors: at each scrape, read the kernel through the library
(:class:`ipvsadm_py.api.IPVS`, :mod:`ipvsadm_py.procfs`) and turn what was
read into metric families.  Nothing polls between scrapes.

Reading and writing are apart: :func:`read_balancer` returns a
:class:`Reading` of plain model objects, :func:`balancer_families` makes the
families of a reading (tested with hand-made readings, no kernel).  A scrape
that cannot read the table (ip_vs unloaded, reloaded meanwhile, namespace
gone) reports ``lvs_up 0`` and nothing else about the table: the next scrape
opens a new netlink socket, so a reloaded module is found again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric as Family
from prometheus_client.registry import Collector

from ipvsadm_py import procfs
from ipvsadm_py.acl import Kind, Target
from ipvsadm_py.api import IPVS
from ipvsadm_py.errors import NotLoaded
from ipvsadm_py.config.desired import ServiceSpec
from ipvsadm_py.exporter import health, names, text
from ipvsadm_py.exporter.names import Metric
from ipvsadm_py.model import (AF_INET6, Daemon, Dest, Forward, Info, LocalAddress, Service,
                              Stats, addr_text, hostport, packed, protocol_name)
from ipvsadm_py.nft import AccessLists

log = logging.getLogger("lvs-exporter")

LPORT_MIN_DEFAULT = 5000     # the kernel's defaults (docs/fullnat.md), used when
LPORT_MAX_DEFAULT = 65535    # the sysctls cannot be read


# ---------------------------------------------------------------- reading
@dataclasses.dataclass
class Reading:
    """What one scrape read from the balancer's kernel."""

    info: Info
    table: list[tuple[Service, list[Dest]]]
    laddrs: dict[tuple, list[LocalAddress]]
    daemons: list[Daemon]
    ext_stats: dict[str, int] | None           # None: no /proc/net/ip_vs_ext_stats
    features: dict[str, bool]
    lport_range: int


def lport_range() -> int:
    """Ports a local address can use: [fullnat_lport_min, fullnat_lport_max]
    (the kernel swaps them when min > max)."""
    lo = procfs.read_sysctl("fullnat_lport_min") or LPORT_MIN_DEFAULT
    hi = procfs.read_sysctl("fullnat_lport_max") or LPORT_MAX_DEFAULT
    return abs(hi - lo) + 1


def _table(ipvs: IPVS) -> list[tuple[Service, list[Dest]]]:
    """Services and real servers; a service deleted between the listing
    and its real servers' dump (a reload of keepalived) is read again once."""
    try:
        return ipvs.table()
    except Exception:       # noqa: BLE001 - one retry of a racing change
        return ipvs.table()


def read_balancer(ipvs: IPVS,
                  ext_stats_path: str | os.PathLike = procfs.EXT_STATS_PROC) -> Reading:
    """One consistent-enough reading: each part is one kernel request."""
    table = _table(ipvs)
    fullnat = ipvs.fullnat_supported()
    laddrs: dict[tuple, list[LocalAddress]] = {}
    # Local addresses serve FULLNAT real servers only: a service without one
    # costs no dump (half the dumps of a NAT or DR table).
    using = [s for s, dests in table if any(d.forward == Forward.FULLNAT for d in dests)]
    if fullnat and using:
        laddrs = {svc.key: las for svc, las in ipvs.laddr_table(using)}
    try:
        ext: dict[str, int] | None = ipvs.ext_stats(ext_stats_path)
    except OSError:
        ext = None
    return Reading(info=ipvs.info(), table=table, laddrs=laddrs, daemons=ipvs.daemons(),
                   ext_stats=ext,
                   features={"fullnat": fullnat, "synproxy": ipvs.synproxy_supported(),
                             "ext_stats": ext is not None},
                   lport_range=lport_range() if fullnat else 0)


# ---------------------------------------------------------------- labels
def service_labels(svc: Service) -> list[str]:
    """vip, port, proto of a service; a firewall-mark service has
    ``proto="fwmark"``, ``vip="fwmark:N"`` (``fwmark6:N`` for IPv6), port 0."""
    if svc.fwmark:
        kind = "fwmark6" if svc.af == AF_INET6 else "fwmark"
        return [f"{kind}:{svc.fwmark}", "0", "fwmark"]
    raw = packed(svc)
    return [addr_text(raw) if raw else "", str(svc.port), protocol_name(svc.protocol)]


def dest_label(dest: Dest) -> str:
    """``address:port`` (``[v6]:port``) of a real server."""
    raw = packed(dest)
    return hostport(raw, dest.port) if raw else f"?:{dest.port}"


# ---------------------------------------------------------------- families
class Families:
    """The families of one scrape, made on first use from the name table.
    Samples are kept as (label values, value) and become the client
    library's families on iteration (the registry's path), or text at once
    (:meth:`text`, the path of ``/metrics``: see :mod:`.text`)."""

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[Metric, list[tuple[tuple[str, ...], float]]]] = {}

    def add(self, metric: Metric, value: float, labels: Sequence[str] = ()) -> None:
        entry = self._by_name.get(metric.name)
        if entry is None:
            entry = self._by_name[metric.name] = (metric, [])
        entry[1].append((tuple(labels), value))

    def __iter__(self) -> Iterator[Family]:
        for metric, samples in self._by_name.values():
            cls = CounterMetricFamily if metric.kind == names.COUNTER else GaugeMetricFamily
            fam = cls(metric.name, metric.help, labels=list(metric.labels))
            for labels, value in samples:
                fam.add_metric(list(labels), value)
            yield fam

    def lines(self) -> list[str]:
        """The exposition text of these families, line by line."""
        out: list[str] = []
        cache: dict = {}
        for metric, samples in self._by_name.values():
            out += text.family_lines(metric.name, metric.kind, metric.help, metric.labels,
                                     samples, cache)
        return out


_BY_NAME = {m.name: m for m in names.BALANCER}
_STATS = (("connections_total", "conns"), ("incoming_packets_total", "inpkts"),
          ("outgoing_packets_total", "outpkts"), ("incoming_bytes_total", "inbytes"),
          ("outgoing_bytes_total", "outbytes"))


def _stats(out: Families, prefix: str, stats: Stats | None, labels: list[str]) -> None:
    stats = stats or Stats()
    for suffix, field in _STATS:
        out.add(_BY_NAME[f"{prefix}_{suffix}"], getattr(stats, field), labels)


def _dest(out: Families, svc_labels: list[str], dest: Dest) -> None:
    labels = [*svc_labels, dest_label(dest)]
    g = _BY_NAME
    out.add(g["lvs_real_server_info"], 1, [*labels, dest.forward.value])
    out.add(g["lvs_real_server_weight"], dest.weight, labels)
    out.add(g["lvs_real_server_up"], 1 if dest.weight > 0 else 0, labels)
    out.add(g["lvs_real_server_active_connections"], dest.active_conns, labels)
    out.add(g["lvs_real_server_inactive_connections"], dest.inact_conns, labels)
    out.add(g["lvs_real_server_persistent_connections"], dest.persist_conns, labels)
    _stats(out, "lvs_real_server", dest.stats, labels)


def _service(out: Families, svc: Service, dests: list[Dest],
             laddrs: list[LocalAddress] | None, ports: int) -> None:
    labels = service_labels(svc)
    g = _BY_NAME
    out.add(g["lvs_service_info"], 1,
            [*labels, svc.scheduler, "true" if svc.synproxy else "false"])
    out.add(g["lvs_service_real_servers"], len(dests), labels)
    out.add(g["lvs_service_available_real_servers"],
            sum(1 for d in dests if d.weight > 0), labels)
    out.add(g["lvs_service_active_connections"], sum(d.active_conns for d in dests), labels)
    out.add(g["lvs_service_inactive_connections"], sum(d.inact_conns for d in dests), labels)
    _stats(out, "lvs_service", svc.stats, labels)
    for dest in dests:
        _dest(out, labels, dest)
    for la in laddrs or ():
        la_labels = [*labels, la.describe()]
        out.add(g["lvs_local_address_sessions"], la.conns, la_labels)
        out.add(g["lvs_local_address_port_conflicts_total"], la.port_conflicts, la_labels)
        out.add(g["lvs_local_address_free_ports"], max(0, ports - la.conns), la_labels)


def _ext_stats(out: Families, counters: dict[str, int]) -> None:
    for counter, value in counters.items():
        if counter in names.EXT_STATS:
            out.add(names.ext_metric(counter), value)
        else:
            out.add(names.EXT_OTHER, value, [names.safe(counter)])


def _unique(table: list[tuple[Service, list[Dest]]]) -> list[tuple[Service, list[Dest]]]:
    """The table without a second service of the same labels (two firewall
    mark services cannot collide, but a scrape must never carry one series
    twice: Prometheus would reject the whole scrape)."""
    seen: set[tuple[str, ...]] = set()
    out = []
    for svc, dests in table:
        key = tuple(service_labels(svc))
        if key not in seen:
            seen.add(key)
            out.append((svc, dests))
    return out


def balancer_families(reading: Reading,
                      configured: list[ServiceSpec] | None = None) -> Families:
    """Every family of a successful reading (lvs_up 1); with the services
    of a keepalived configuration, the health of their real servers."""
    out = Families()
    g = _BY_NAME
    out.add(g["lvs_up"], 1)
    out.add(g["lvs_info"], 1, [reading.info.version_text])
    out.add(g["lvs_connection_table_size"], reading.info.conn_tab_size)
    for feature, present in sorted(reading.features.items()):
        out.add(g["lvs_feature"], 1 if present else 0, [feature])
    for d in reading.daemons:
        out.add(g["lvs_sync_daemon_running"], 1, [str(d.state), str(d.syncid), d.mcast_ifn])
    table = _unique(reading.table)
    out.add(g["lvs_services"], len(table))
    if reading.features.get("fullnat"):
        out.add(g["lvs_fullnat_local_port_range_ports"], reading.lport_range)
    for svc, dests in table:
        _service(out, svc, dests, reading.laddrs.get(svc.key), reading.lport_range)
    if reading.ext_stats is not None:
        _ext_stats(out, reading.ext_stats)
    if configured is not None:
        for svc, dest, up in health.health(configured, reading.table):
            out.add(g["lvs_real_server_healthy"], 1 if up else 0,
                    [*service_labels(svc), dest_label(dest)])
    return out


_ACL_BY_NAME = {m.name: m for m in names.ACL}


def acl_families(out: Families, counters: dict[tuple[Kind, Target], tuple[int, int]]) -> None:
    """The drop counters of the client lists (docs/acl.md); a VIP-wide list
    has ``port="0"``, ``proto="any"``."""
    for (kind, target), (packets, nbytes) in sorted(
            counters.items(), key=lambda kv: (kv[0][0].value, kv[0][1].sort_key())):
        labels = [kind.value, target.address, str(target.port or 0), target.protocol or "any"]
        out.add(_ACL_BY_NAME["lvs_acl_dropped_packets_total"], packets, labels)
        out.add(_ACL_BY_NAME["lvs_acl_dropped_bytes_total"], nbytes, labels)


# ---------------------------------------------------------------- collectors
class BalancerCollector(Collector):
    """The balancer's metrics, read at each scrape in this process's network
    namespace.  ``open_ipvs`` makes the handle (a new netlink socket per
    scrape: a reloaded ip_vs has a new family id)."""

    def __init__(self, open_ipvs: Callable[[], IPVS] = IPVS,
                 ext_stats_path: str | os.PathLike = procfs.EXT_STATS_PROC,
                 loaded: Callable[[], bool] = lambda: procfs.module_loaded("ip_vs"),
                 lists: AccessLists | None = None,
                 keepalived: health.KeepalivedConf | None = None) -> None:
        self.open_ipvs = open_ipvs
        self.ext_stats_path = ext_stats_path
        self.loaded = loaded
        self.lists = lists or AccessLists()
        self.keepalived = keepalived
        self._last_error: str | None = None
        self._last_acl_error: str | None = None

    def describe(self) -> list[Family]:
        """Nothing: registering must not read the kernel."""
        return []

    def read(self) -> Families:
        # Without ip_vs, opening the netlink family would make the kernel
        # load it: a scrape must not undo an administrator's modprobe -r.
        if not self.loaded():
            raise NotLoaded("ip_vs is not loaded")
        with self.open_ipvs() as ipvs:
            reading = read_balancer(ipvs, self.ext_stats_path)
        return balancer_families(
            reading, self.keepalived.services() if self.keepalived else None)

    def families(self) -> Families:
        """One scrape's families (read now)."""
        start = time.monotonic()
        try:
            out = self.read()
            self._note(None)
        except Exception as exc:      # noqa: BLE001 - a scrape never kills the exporter
            self._note(str(exc) or type(exc).__name__)
            out = Families()
            out.add(_BY_NAME["lvs_up"], 0)
        self._acl(out)
        out.add(_BY_NAME["lvs_scrape_duration_seconds"], time.monotonic() - start)
        return out

    def collect(self) -> Iterator[Family]:
        yield from self.families()

    def _acl(self, out: Families) -> None:
        """The lists' counters, whether or not ip_vs is loaded (nftables
        drops before IPVS); no table or no nft: no series, no error."""
        try:
            acl_families(out, self.lists.counters())
            error = None
        except Exception as exc:      # noqa: BLE001 - a scrape never kills the exporter
            error = str(exc) or type(exc).__name__
        if error != self._last_acl_error and error:
            log.warning("cannot read the client lists' counters: %s", error)
        self._last_acl_error = error

    def _note(self, error: str | None) -> None:
        """Log when reading starts or stops failing (not at every scrape)."""
        if error != self._last_error:
            if error:
                log.warning("cannot read the IPVS table: %s", error)
            else:
                log.info("reading the IPVS table again")
        self._last_error = error


_TOA_BY_NAME = {m.name: m for m in names.TOA}


def toa_families(loaded: bool, counters: dict[str, int] | None) -> Families:
    """The families of a real server: whether toa.ko is loaded, its counters."""
    out = Families()
    out.add(_TOA_BY_NAME["lvs_toa_loaded"], 1 if loaded else 0)
    for counter, value in (counters or {}).items():
        if counter in names.TOA_STATS:
            out.add(names.toa_metric(counter), value)
        else:
            out.add(names.TOA_OTHER, value, [names.safe(counter)])
    return out


class ToaCollector(Collector):
    """A real server's metrics: toa.ko and /proc/net/toa_stats."""

    def __init__(self, stats_path: str | os.PathLike = procfs.TOA_STATS_PROC,
                 module_dir: str | os.PathLike = procfs.TOA_MODULE_DIR) -> None:
        self.stats_path = stats_path
        self.module_dir = module_dir

    def describe(self) -> list[Family]:
        return []

    def families(self) -> Families:
        start = time.monotonic()
        loaded = procfs.toa_loaded(self.module_dir)
        try:
            counters: dict[str, int] | None = procfs.read_toa_stats(self.stats_path)
        except OSError:
            counters = None
        out = toa_families(loaded, counters)
        out.add(_TOA_BY_NAME["lvs_scrape_duration_seconds"], time.monotonic() - start)
        return out

    def collect(self) -> Iterator[Family]:
        yield from self.families()
