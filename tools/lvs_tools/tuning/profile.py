"""Tuning profiles: YAML files that say what the host should look like.

Schema (every key optional; ``profiles/default.yaml`` documents the values)::

    description: free text
    strategy: per-cpu | numa-local | explicit | none      # IRQ/XPS placement
    cpus: all | "2-15"              # CPUs the strategies may use (offline ones never)
    interfaces: auto | [eth0, eth1] # auto: every NIC with a device (not veth, bridges)
    irq_map:                        # explicit strategy: a CPU list per queue
      eth0: ["0", "1", "2-3"]
    rps: single-queue | all | off | keep
    xps: true | false
    rfs: keep | {sock_flow_entries: 32768, flow_cnt: auto | N}
    irqbalance: off | keep
    sysctls: {net.core.netdev_max_backlog: 262144, ...}
    offloads: {gro: off, lro: off, gro_hw: off, <ethtool feature name>: on|off}
    ipvs: {conn_tab_bits: 20}       # 8..27; a module parameter, audited not written

Unknown keys and wrong types are errors that name the key.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from lvs_tools.tuning import cpumask

PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT_PROFILE = PROFILE_DIR / "default.yaml"
STRATEGIES = ("per-cpu", "numa-local", "explicit", "none")
RPS_POLICIES = ("single-queue", "all", "off", "keep")
# Short names for the ethtool features operators mean (ethtool -k shows the
# long ones: generic-receive-offload, large-receive-offload, rx-gro-hw).
FEATURE_ALIASES = {"gro": "rx-gro", "lro": "rx-lro", "gro_hw": "rx-gro-hw",
                   "generic-receive-offload": "rx-gro",
                   "large-receive-offload": "rx-lro"}
KEYS = {"description", "strategy", "cpus", "interfaces", "irq_map", "rps", "xps", "rfs",
        "irqbalance", "sysctls", "offloads", "ipvs"}
SYSCTL_KEY = re.compile(r"[a-z0-9_]+(\.[a-z0-9_-]+)+")


class ProfileError(ValueError):
    """The profile is not valid; the message names the key."""


@dataclasses.dataclass(frozen=True)
class Rfs:
    """Receive flow steering: the global socket table and per-queue tables."""

    sock_flow_entries: int
    flow_cnt: int | None        # None: auto (entries / rx queues)


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    strategy: str = "per-cpu"
    cpus: cpumask.CpuSet | None = None                 # None: all online
    interfaces: tuple[str, ...] | None = None          # None: auto
    irq_map: dict[str, tuple[cpumask.CpuSet, ...]] = dataclasses.field(default_factory=dict)
    rps: str = "single-queue"
    xps: bool = True
    rfs: Rfs | None = None                             # None: keep
    irqbalance: str = "off"
    sysctls: dict[str, str] = dataclasses.field(default_factory=dict)
    offloads: dict[str, bool] = dataclasses.field(default_factory=dict)
    conn_tab_bits: int | None = None

    def with_overrides(self, strategy: str | None = None,
                       interfaces: tuple[str, ...] | None = None) -> "Profile":
        """The same profile with a strategy or interface list from the command line."""
        changes: dict[str, Any] = {}
        if strategy:
            changes["strategy"] = _choice("strategy", strategy, STRATEGIES)
        if interfaces:
            changes["interfaces"] = tuple(interfaces)
        return dataclasses.replace(self, **changes)


def load_profile(path: Path | str | None = None) -> Profile:
    """Read a profile file (default: the packaged default profile)."""
    path = Path(path) if path else DEFAULT_PROFILE
    if not path.exists() and not path.suffix and (PROFILE_DIR / f"{path}.yaml").exists():
        path = PROFILE_DIR / f"{path}.yaml"       # a packaged profile by name
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    return parse_profile(data or {}, path.stem)


def parse_profile(data: Any, name: str) -> Profile:
    """A Profile from the YAML document's data."""
    if not isinstance(data, dict):
        raise ProfileError(f"profile {name}: expected a mapping at the top")
    unknown = set(data) - KEYS
    if unknown:
        raise ProfileError(f"profile {name}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    strategy = _choice("strategy", data.get("strategy", "per-cpu"), STRATEGIES)
    irq_map = _irq_map(data.get("irq_map") or {})
    if strategy == "explicit" and not irq_map:
        raise ProfileError("strategy explicit needs an irq_map")
    return Profile(
        name=name, description=str(data.get("description", "")).strip(),
        strategy=strategy, cpus=_cpus(data.get("cpus", "all")),
        interfaces=_interfaces(data.get("interfaces", "auto")), irq_map=irq_map,
        rps=_choice("rps", _switch(data.get("rps", "single-queue")), RPS_POLICIES),
        xps=_bool("xps", data.get("xps", True)), rfs=_rfs(data.get("rfs", "keep")),
        irqbalance=_choice("irqbalance", _switch(data.get("irqbalance", "off")),
                           ("off", "keep")),
        sysctls=_sysctls(data.get("sysctls") or {}),
        offloads=_offloads(data.get("offloads") or {}),
        conn_tab_bits=_ipvs(data.get("ipvs") or {}))


def _switch(value: Any) -> Any:
    """YAML reads a bare ``off`` as False and ``on`` as True."""
    return {False: "off", True: "on"}.get(value, value) if isinstance(value, bool) else value


def _choice(key: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ProfileError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ProfileError(f"{key}: expected true/false (on/off), got {value!r}")
    return value


def _cpulist(key: str, value: Any) -> cpumask.CpuSet:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ProfileError(f"{key}: expected a CPU list like \"0-3,8\", got {value!r}")
    try:
        cpus = cpumask.parse_cpulist(str(value))
    except ValueError as exc:
        raise ProfileError(f"{key}: {exc}") from exc
    if not cpus:
        raise ProfileError(f"{key}: empty CPU list")
    return cpus


def _cpus(value: Any) -> cpumask.CpuSet | None:
    return None if value in ("all", None) else _cpulist("cpus", value)


def _interfaces(value: Any) -> tuple[str, ...] | None:
    if value in ("auto", None):
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ProfileError(f"interfaces: expected auto or a list of names, got {value!r}")
    return tuple(value)


def _irq_map(value: Any) -> dict[str, tuple[cpumask.CpuSet, ...]]:
    if not isinstance(value, dict):
        raise ProfileError("irq_map: expected a mapping interface -> list of CPU lists")
    result = {}
    for nic, queues in value.items():
        if not isinstance(queues, list) or not queues:
            raise ProfileError(f"irq_map.{nic}: expected a list with a CPU list per queue")
        result[str(nic)] = tuple(_cpulist(f"irq_map.{nic}[{i}]", q)
                                 for i, q in enumerate(queues))
    return result


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileError(f"{key}: expected a number >= 0, got {value!r}")
    return value


def _rfs(value: Any) -> Rfs | None:
    if value in ("keep", None):
        return None
    if not isinstance(value, dict) or set(value) - {"sock_flow_entries", "flow_cnt"}:
        raise ProfileError("rfs: expected keep or {sock_flow_entries: N, flow_cnt: auto|N}")
    flow_cnt = value.get("flow_cnt", "auto")
    return Rfs(_count("rfs.sock_flow_entries", value.get("sock_flow_entries", 0)),
               None if flow_cnt == "auto" else _count("rfs.flow_cnt", flow_cnt))


def _sysctls(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ProfileError("sysctls: expected a mapping name -> value")
    result = {}
    for key, setting in value.items():
        if not isinstance(key, str) or not SYSCTL_KEY.fullmatch(key) or ".." in key:
            raise ProfileError(f"sysctls: {key!r} is not a sysctl name like net.core.x")
        if isinstance(setting, bool) or not isinstance(setting, (int, str)):
            raise ProfileError(f"sysctls.{key}: expected a number or a string")
        result[key] = str(setting)
    return result


def feature_name(name: str) -> str:
    """The ethtool feature a profile key means (``gro`` -> ``rx-gro``)."""
    return FEATURE_ALIASES.get(name, name)


def _offloads(value: Any) -> dict[str, bool]:
    if not isinstance(value, dict):
        raise ProfileError("offloads: expected a mapping feature -> on/off")
    return {feature_name(str(k)): _bool(f"offloads.{k}", v) for k, v in value.items()}


def _ipvs(value: Any) -> int | None:
    if not isinstance(value, dict) or set(value) - {"conn_tab_bits"}:
        raise ProfileError("ipvs: expected {conn_tab_bits: N}")
    bits = value.get("conn_tab_bits")
    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, int) or not 8 <= bits <= 27:
        raise ProfileError(f"ipvs.conn_tab_bits: expected 8..27 (the kernel's range), "
                           f"got {bits!r}")
    return bits
