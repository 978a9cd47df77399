"""Apply a plan, remember what was there, and put it back.

apply()   checks the whole plan first (no problems; every target still holds
          the value the plan saw, files writable), records the old values in
          the state file, then writes in plan order, reading each value back.
          If one write fails, everything written so far is rolled back and the
          state file is restored: nothing stays half-applied.
revert()  writes the recorded old values back, newest first, and removes
          the state file once everything is restored.

The state file lives in /run (a tmpfs): the values it holds are those of
the running boot, and a reboot brings the kernel defaults back anyway.  It
carries the boot id, and revert() refuses a file from another boot.  A
second apply keeps the first recorded old value of each target, so revert
always returns to the state before the first apply.
"""

from __future__ import annotations

import dataclasses
import json
import time

from lvs_tools.tuning.backends import BackendError, Host
from lvs_tools.tuning.hostfs import HostReadError
from lvs_tools.tuning.plan import Change, Plan, onoff, same_value

STATE_PATH = "/run/lvs-toolkit/tuning-state.json"
STATE_VERSION = 1


class ApplyError(Exception):
    """Apply refused or failed; ``rolled_back`` lists what was undone."""

    def __init__(self, message: str, rolled_back: tuple[Change, ...] = (),
                 rollback_errors: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.rolled_back = rolled_back
        self.rollback_errors = rollback_errors


class RevertError(Exception):
    """Nothing to revert, or the state file does not belong to this boot."""


class WriteError(Exception):
    """A value did not read back as written."""


@dataclasses.dataclass
class RevertResult:
    restored: list[dict]
    skipped: list[str]
    errors: list[str]


# --- reading and writing one target ---------------------------------------

def read_current(host: Host, kind: str, target: str) -> str | None:
    """The value a change's target holds now, in the plan's notation."""
    if kind.startswith("service-"):
        state = host.services.get(target)
        if kind == "service-active":
            return "active" if state.active else "inactive"
        return "enabled" if state.enabled else "disabled"
    if kind == "feature":
        ifname, _, name = target.partition(":")
        feature = host.features.get(ifname).get(name)
        return None if feature is None else onoff(feature.enabled)
    return host.fs.read(target)


def write_value(host: Host, kind: str, target: str, value: str) -> None:
    """Write one value and check that it reads back as written."""
    if kind == "service-active":
        host.services.set_active(target, value == "active")
    elif kind == "service-enabled":
        host.services.set_enabled(target, value == "enabled")
    elif kind == "feature":
        ifname, _, name = target.partition(":")
        host.features.set(ifname, name, value == "on")
    else:
        host.fs.write(target, value)
    now = read_current(host, kind, target)
    if not same_value(kind, now, value):
        raise WriteError(f"{target}: wrote {value!r}, reads back {now!r}")


def _describe_error(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


# --- the state file ---------------------------------------------------------

def load_state(host: Host, path: str = STATE_PATH) -> dict | None:
    text = host.fs.read(path)
    if text is None:
        return None
    data = json.loads(text)
    if data.get("version") != STATE_VERSION:
        raise RevertError(f"{path}: unknown state version {data.get('version')!r}")
    return data


def merged_state(previous: dict | None, plan: Plan, boot_id: str | None) -> dict:
    """The state after applying ``plan``: first old values are kept."""
    entries = {(e["kind"], e["target"]): e for e in (previous or {}).get("entries", [])}
    for change in plan.changes:
        key = (change.kind, change.target)
        old = entries[key]["old"] if key in entries else change.old
        entries.pop(key, None)
        entries[key] = {"kind": change.kind, "target": change.target, "old": old,
                        "new": change.new}
    return {"version": STATE_VERSION, "boot_id": boot_id, "profile": plan.profile,
            "applied": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "entries": list(entries.values())}


# --- apply -----------------------------------------------------------------

def preflight(host: Host, plan: Plan) -> None:
    """Refuse a plan that cannot be applied whole."""
    if plan.problems:
        lines = "\n".join(f"  {p.target}: {p.message}" for p in plan.problems)
        raise ApplyError(f"the plan has {len(plan.problems)} problem(s); nothing written:\n"
                         + lines)
    for change in plan.changes:
        try:
            now = read_current(host, change.kind, change.target)
        except (OSError, BackendError) as exc:
            raise ApplyError(f"{change.target}: cannot read: {_describe_error(exc)}; "
                             f"nothing written") from exc
        if not same_value(change.kind, now, change.old):
            raise ApplyError(f"{change.target} changed since the plan was made "
                             f"({change.old!r} -> {now!r}); nothing written")
        if change.channel == "file" and not host.fs.writable(change.target):
            raise ApplyError(f"{change.target} is read-only; nothing written")


def rollback(host: Host, written: list[Change]) -> list[str]:
    """Write the old values of ``written`` back, newest first; the errors."""
    errors = []
    for change in reversed(written):
        if change.old is None:
            continue
        try:
            if same_value(change.kind, read_current(host, change.kind, change.target),
                          change.old):
                continue
            write_value(host, change.kind, change.target, change.old)
        except (OSError, BackendError, WriteError) as exc:
            errors.append(f"{change.target}: {_describe_error(exc)}")
    return errors


def apply(host: Host, plan: Plan, state_path: str = STATE_PATH) -> list[Change]:
    """Write every change of ``plan`` or none; returns the changes written."""
    preflight(host, plan)
    if not plan.changes:
        return []
    try:
        previous_text = host.fs.read(state_path)
        previous = load_state(host, state_path)
    except (HostReadError, ValueError, RevertError) as exc:
        raise ApplyError(f"{state_path}: {exc}; nothing written") from exc
    boot_id = host.fs.read("/proc/sys/kernel/random/boot_id")
    if previous and previous.get("boot_id") != boot_id:
        previous = None                    # a file from another boot is stale
    host.fs.write_new(state_path, json.dumps(merged_state(previous, plan, boot_id), indent=1))
    written: list[Change] = []
    for change in plan.changes:
        try:
            write_value(host, change.kind, change.target, change.new)
        except (OSError, BackendError, WriteError) as exc:
            # The failed target too: a value that read back wrong was changed.
            errors = rollback(host, [*written, change])
            _restore_state_file(host, state_path, previous_text)
            raise ApplyError(
                f"{change.target}: cannot write {change.new!r}: {_describe_error(exc)}; "
                f"rolled back the {len(written)} earlier write(s)"
                + (f", {len(errors)} of them failed" if errors else ""),
                tuple(written), tuple(errors)) from exc
        written.append(change)
    return written


def _restore_state_file(host: Host, path: str, text: str | None) -> None:
    if text is None:
        host.fs.remove(path)
    else:
        host.fs.write_new(path, text)


# --- revert ------------------------------------------------------------------

def revert(host: Host, state_path: str = STATE_PATH) -> RevertResult:
    """Restore what the state file recorded; keep the entries that failed."""
    state = load_state(host, state_path)
    if state is None:
        raise RevertError(f"nothing to revert: {state_path} does not exist")
    boot_id = host.fs.read("/proc/sys/kernel/random/boot_id")
    if state.get("boot_id") != boot_id:
        raise RevertError(f"{state_path} was written during another boot "
                          f"({state.get('boot_id')}); its values are stale: remove it")
    result = RevertResult([], [], [])
    failed = []
    for entry in reversed(state["entries"]):
        _revert_entry(host, entry, result, failed)
    if failed:
        state["entries"] = list(reversed(failed))
        host.fs.write_new(state_path, json.dumps(state, indent=1))
    else:
        host.fs.remove(state_path)
    return result


def _revert_entry(host: Host, entry: dict, result: RevertResult, failed: list[dict]) -> None:
    kind, target, old = entry["kind"], entry["target"], entry["old"]
    if old is None:
        result.skipped.append(f"{target}: did not exist before")
        return
    try:
        if same_value(kind, read_current(host, kind, target), old):
            result.skipped.append(f"{target}: already {old}")
            return
        write_value(host, kind, target, old)
        result.restored.append(entry)
    except (OSError, BackendError, WriteError) as exc:
        result.errors.append(f"{target}: cannot restore {old!r}: {_describe_error(exc)}")
        failed.append(entry)
