"""What the tool reads and changes besides files: NIC features and services.

Each has a real backend (pyroute2's Ethtool; systemd through ``systemctl``)
and a file backend that keeps the same state as JSON below the root, so a
fake tree carries its NICs' features and its services with it::

    ROOT/.lvs-tune-fake/features.json   {"eth0": {"rx-gro": [true, true], ...}}
                                          name -> [enabled, changeable]
    ROOT/.lvs-tune-fake/services.json   {"irqbalance": {"enabled": true, "active": true}}

``Host.open(root)`` picks the real backends for ``/`` and the file ones
for any other root.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from lvs_tools.tuning.hostfs import HostFS

FAKE_DIR = "/.lvs-tune-fake"


class BackendError(Exception):
    """A feature or service could not be read or changed."""


@dataclasses.dataclass(frozen=True)
class Feature:
    """One ethtool feature of a NIC (``rx-gro``), as ``ethtool -k`` shows it."""

    name: str
    enabled: bool
    changeable: bool


@dataclasses.dataclass(frozen=True)
class ServiceState:
    """A service as far as tuning cares: installed, enabled at boot, running."""

    name: str
    installed: bool
    enabled: bool | None      # None: no service manager to ask
    active: bool
    managed: bool             # True if the tool can start/stop/enable it


class FeatureBackend(Protocol):
    def get(self, ifname: str) -> dict[str, Feature]: ...

    def set(self, ifname: str, name: str, enabled: bool) -> None: ...


class ServiceBackend(Protocol):
    def get(self, name: str) -> ServiceState: ...

    def set_enabled(self, name: str, enabled: bool) -> None: ...

    def set_active(self, name: str, active: bool) -> None: ...


class EthtoolFeatures:
    """Features through pyroute2's Ethtool (ioctl), in the current netns."""

    def get(self, ifname: str) -> dict[str, Feature]:
        from pyroute2 import Ethtool

        try:
            with Ethtool() as ethtool:
                found = ethtool.get_features(ifname).features
        except Exception as exc:  # pyroute2 raises several kinds
            raise BackendError(f"{ifname}: cannot read features: {exc}") from exc
        return {name: Feature(name, bool(f.enable), bool(f.available))
                for name, f in found.items()}

    def set(self, ifname: str, name: str, enabled: bool) -> None:
        from pyroute2 import Ethtool

        try:
            with Ethtool() as ethtool:
                features = ethtool.get_features(ifname)
                if name not in features.features:
                    raise BackendError(f"{ifname} has no feature {name}")
                features.features[name].enable = enabled
                ethtool.set_features(ifname, features)
        except BackendError:
            raise
        except Exception as exc:
            raise BackendError(f"{ifname}: cannot set {name}: {exc}") from exc


class SystemdServices:
    """Services through ``systemctl`` when systemd runs; otherwise read-only."""

    def __init__(self, fs: HostFS) -> None:
        self.fs = fs

    @staticmethod
    def _systemd() -> bool:
        return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None

    @staticmethod
    def _ask(verb: str, name: str) -> str:
        res = subprocess.run(["systemctl", verb, f"{name}.service"],
                             capture_output=True, text=True)
        return res.stdout.strip()

    def get(self, name: str) -> ServiceState:
        running = process_running(self.fs, name)
        if not self._systemd():
            return ServiceState(name, running or shutil.which(name) is not None,
                                None, running, False)
        enabled = self._ask("is-enabled", name)
        installed = enabled not in ("", "not-found") or running
        active = self._ask("is-active", name) in ("active", "activating", "reloading")
        return ServiceState(name, installed, enabled in ("enabled", "enabled-runtime"),
                            active or running, True)

    def _do(self, verb: str, name: str) -> None:
        if not self._systemd():
            raise BackendError(f"{name}: systemd is not running; {verb} it by hand")
        res = subprocess.run(["systemctl", verb, f"{name}.service"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise BackendError(f"systemctl {verb} {name}: {res.stderr.strip()}")

    def set_enabled(self, name: str, enabled: bool) -> None:
        self._do("enable" if enabled else "disable", name)

    def set_active(self, name: str, active: bool) -> None:
        self._do("start" if active else "stop", name)


def process_running(fs: HostFS, comm: str) -> bool:
    """True if a process named ``comm`` runs (from ``/proc/PID/comm``)."""
    return any(fs.read(f"/proc/{pid}/comm") == comm
               for pid in fs.listdir("/proc") if pid.isdigit())


class _JsonState:
    """A JSON document below the root of a fake tree."""

    def __init__(self, fs: HostFS, name: str) -> None:
        self.fs, self.path = fs, f"{FAKE_DIR}/{name}"

    def load(self) -> dict:
        text = self.fs.read(self.path)
        return json.loads(text) if text else {}

    def save(self, data: dict) -> None:
        self.fs.write_new(self.path, json.dumps(data, indent=1, sort_keys=True))


class FileFeatures:
    """Features kept in ``ROOT/.lvs-tune-fake/features.json``."""

    def __init__(self, fs: HostFS) -> None:
        self.state = _JsonState(fs, "features.json")

    def get(self, ifname: str) -> dict[str, Feature]:
        nic = self.state.load().get(ifname)
        if nic is None:
            raise BackendError(f"{ifname}: no such device")
        return {name: Feature(name, bool(v[0]), bool(v[1])) for name, v in nic.items()}

    def set(self, ifname: str, name: str, enabled: bool) -> None:
        data = self.state.load()
        value = data.get(ifname, {}).get(name)
        if value is None:
            raise BackendError(f"{ifname} has no feature {name}")
        if not value[1]:
            raise BackendError(f"{ifname}: {name} is fixed")
        value[0] = enabled
        self.state.save(data)


class FileServices:
    """Services kept in ``ROOT/.lvs-tune-fake/services.json``."""

    def __init__(self, fs: HostFS) -> None:
        self.state = _JsonState(fs, "services.json")

    def get(self, name: str) -> ServiceState:
        entry = self.state.load().get(name)
        if entry is None:
            return ServiceState(name, False, False, False, True)
        return ServiceState(name, True, entry["enabled"], entry["active"], True)

    def _set(self, name: str, key: str, value: bool) -> None:
        data = self.state.load()
        if name not in data:
            raise BackendError(f"{name} is not installed")
        data[name][key] = value
        self.state.save(data)

    def set_enabled(self, name: str, enabled: bool) -> None:
        self._set(name, "enabled", enabled)

    def set_active(self, name: str, active: bool) -> None:
        self._set(name, "active", active)


@dataclasses.dataclass
class Host:
    """Everything the tool touches on one machine (or one fake tree)."""

    fs: HostFS
    features: FeatureBackend
    services: ServiceBackend

    @classmethod
    def open(cls, root: Path | str = "/") -> "Host":
        """The real backends for ``/``, the JSON-file ones for a fake root."""
        fs = HostFS(root)
        if fs.is_real:
            return cls(fs, EthtoolFeatures(), SystemdServices(fs))
        return cls(fs, FileFeatures(fs), FileServices(fs))
