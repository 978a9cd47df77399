"""Reading a configuration file: the YAML schema, checked whole.

:func:`validate` turns the text into a :class:`~ipvsadm_py.config.desired.Desired`
state of model objects, or raises
:class:`~ipvsadm_py.config.desired.ConfigError` with every problem as
``FILE:LINE: path: message``.  This module reads the top level, timeouts,
sysctls and daemons; :mod:`.services` the services and local address
groups; :mod:`.nodes` the YAML nodes.  The rules shared with the command
line come from :mod:`ipvsadm_py.rules`; these modules word their faults.
The ``cluster:`` section (for lvs-cluster) is read by :mod:`.cluster`.
The schema is described in docs/ipvsadm-py.md.
"""

from __future__ import annotations

import yaml

from ipvsadm_py import rules
from ipvsadm_py.config.cluster import read_cluster
from ipvsadm_py.config.desired import ConfigError, Desired, ServiceSpec
from ipvsadm_py.config.lists import read_vips, unique_lists
from ipvsadm_py.config.nodes import Checker, enum_names, expand_addresses
from ipvsadm_py.config.services import read_groups, read_services
from ipvsadm_py.model import Daemon, DaemonState, Timeouts

# Importable from here as before: what validate returns and raises.
__all__ = ["SCHEMA_VERSION", "ConfigError", "Desired", "ServiceSpec", "expand_addresses",
           "load", "validate"]

SCHEMA_VERSION = 1

TOP_KEYS = ("version", "services", "timeouts", "sysctls", "daemons", "local_address_groups",
            "vips", "cluster")
DAEMON_KEYS = ("state", "mcast_interface", "syncid", "sync_maxlen", "mcast_group",
               "mcast_port", "mcast_ttl")


def _daemon(c: Checker, node: yaml.Node, path: str) -> Daemon | None:
    m = c.mapping(node, path, DAEMON_KEYS)
    if "state" not in m:
        c.fail(node, path, "a daemon needs state: master or backup")
        return None
    state = c.choice(m["state"], f"{path}.state", enum_names(DaemonState))
    d = Daemon(state=DaemonState(state or "master"))
    if "mcast_interface" in m:
        d.mcast_ifn = str(c.scalar(m["mcast_interface"], f"{path}.mcast_interface"))
    for key in ("syncid", "sync_maxlen", "mcast_port", "mcast_ttl"):
        if key in m:
            value = c.integer(m[key], f"{path}.{key}", key)
            if value is not None:
                setattr(d, key, value)
    if "mcast_group" in m:
        addr = c.address(m["mcast_group"], f"{path}.mcast_group")
        if addr is not None and not rules.is_multicast(addr.packed):
            c.fail(m["mcast_group"], f"{path}.mcast_group", f"{addr} is not multicast")
        d.mcast_group = addr
    return d


def _sysctls(c: Checker, node: yaml.Node) -> dict[str, int]:
    out: dict[str, int] = {}
    if not isinstance(node, yaml.MappingNode):
        c.fail(node, "sysctls", "must be a mapping of name: integer")
        return out
    for key_node, value in node.value:
        name = str(key_node.value)
        if not name.replace("_", "").isalnum():
            c.fail(key_node, f"sysctls.{name}", "not a sysctl name")
            continue
        number = c.integer_in(value, f"sysctls.{name}", -rules.INT_MAX - 1, rules.INT_MAX)
        if number is not None:
            out[name] = number
    return out


def validate(text: str, source: str = "<config>") -> Desired:
    """The desired state of a configuration text; ConfigError lists every problem."""
    c = Checker(source)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ConfigError([f"{source}:{line}: not valid YAML: "
                           f"{getattr(exc, 'problem', exc)}"]) from None
    desired = Desired(owns_lists=True)
    if root is None:
        return desired
    top = c.mapping(root, "(top)", TOP_KEYS)
    if "version" in top:
        c.integer_in(top["version"], "version", SCHEMA_VERSION, SCHEMA_VERSION)
    groups = read_groups(c, top["local_address_groups"]) if "local_address_groups" in top else {}
    if "services" in top:
        desired.services = read_services(c, top["services"], groups)
    if "timeouts" in top:
        tm = c.mapping(top["timeouts"], "timeouts", ("tcp", "tcp_fin", "udp"))
        desired.timeouts = Timeouts(**{key: c.integer(node, f"timeouts.{key}", "timeout") or 0
                                       for key, node in tm.items()})
    if "sysctls" in top:
        desired.sysctls = _sysctls(c, top["sysctls"])
    if "vips" in top:
        desired.vip_lists = read_vips(c, top["vips"])
    if "daemons" in top:
        desired.daemons = []
        for index, item in enumerate(c.seq(top["daemons"], "daemons")):
            daemon = _daemon(c, item, f"daemons[{index}]")
            if daemon is not None:
                desired.daemons.append(daemon)
        if len({d.state for d in desired.daemons}) != len(desired.daemons):
            c.fail(top["daemons"], "daemons", "at most one master and one backup")
    if "cluster" in top:
        vips = list(dict.fromkeys(spec.service.addr for spec in desired.services
                                  if spec.service.addr is not None))
        desired.cluster = read_cluster(c, top["cluster"], vips)
    unique_lists(c, root, desired)
    if c.problems:
        raise ConfigError(c.problems)
    return desired


def load(path: str) -> Desired:
    with open(path, encoding="utf-8") as handle:
        return validate(handle.read(), path)
