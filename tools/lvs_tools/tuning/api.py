"""The tuning tool as a library: what ``lvs-tune`` does, callable from Python.

    tuner = Tuner.open(profile="default")          # root "/" by default
    print(report.plan_table(tuner.plan()))
    tuner.apply()
    tuner.revert()
    assert tuner.audit() == []
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from lvs_tools.tuning.apply import STATE_PATH, RevertResult, apply, revert
from lvs_tools.tuning.audit import Deviation, deviations
from lvs_tools.tuning.backends import Host
from lvs_tools.tuning.facts import HostFacts, read_host
from lvs_tools.tuning.plan import Change, Plan, make_plan
from lvs_tools.tuning.profile import Profile, load_profile


@dataclasses.dataclass
class Tuner:
    """One host (or fake tree), one profile, one state file."""

    host: Host
    profile: Profile
    state_path: str = STATE_PATH

    @classmethod
    def open(cls, root: Path | str = "/", profile: Path | str | Profile | None = None,
             strategy: str | None = None, interfaces: Sequence[str] | None = None,
             state_path: str = STATE_PATH) -> "Tuner":
        """A tuner for ``root`` with a profile file (or name, or object) and overrides."""
        loaded = profile if isinstance(profile, Profile) else load_profile(profile)
        loaded = loaded.with_overrides(strategy, tuple(interfaces) if interfaces else None)
        return cls(Host.open(root), loaded, state_path)

    def facts(self) -> HostFacts:
        return read_host(self.host, self.profile.sysctls)

    def plan(self) -> Plan:
        return make_plan(self.facts(), self.profile)

    def apply(self, plan: Plan | None = None) -> list[Change]:
        """Apply ``plan`` (default: a fresh one) whole, or raise ApplyError."""
        return apply(self.host, plan or self.plan(), self.state_path)

    def revert(self) -> RevertResult:
        return revert(self.host, self.state_path)

    def audit(self) -> list[Deviation]:
        return deviations(self.plan())
