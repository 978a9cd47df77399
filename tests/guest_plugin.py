"""pytest plugin: kernel tests run inside one booted guest per kernel line.

On the host, every test marked ``kernel`` is parametrized by kernel release
(``[6.1.0-56-amd64]``, ``[6.12.95+deb12-amd64]``).  When the first of them
for a kernel is due, the plugin boots that kernel once (tools/guest.py) and
starts pytest *inside* it with the node ids of all that kernel's tests.  The
guest's pytest writes each test report as a JSON line into a folder the
guest may write; the host replays those reports as its own, so one pytest
run shows unit and kernel tests together, with the guest's tracebacks.

Inside the guest (``LVS_GUEST=1``), the same collection yields only the
running kernel's parameter, so node ids match the host's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import tiers
from tools import guest, guest_nic, kbuild
from tools.guest_init import TEST_START, console_excerpt, mark_log

IN_GUEST = os.environ.get("LVS_GUEST") == "1"
# LVS_GUEST_RESULTS: another place for them, e.g. for a second run at once
RESULTS = Path(os.environ.get("LVS_GUEST_RESULTS", kbuild.ROOT / "build" / "guest"))
# Extra QEMU devices for every kernel-test guest.  Each entry is a context
# manager that prepares on the host what the device needs, yields QEMU
# arguments and cleans up after the guest has exited; one that cannot be set
# up (TapError) is reported and left out, and the tests needing it fail.
# multiqueue_nic: a multi-queue virtio NIC on a host tap that stays down
# (tests/kernel/test_tuning.py).
GUEST_DEVICES = (guest_nic.multiqueue_nic,)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lvs", "kernel tests in a guest")
    group.addoption("--kver", action="append", default=[],
                    help="kernel release for kernel tests (repeatable; default: "
                         "every installed 6.1/6.12 kernel)")
    group.addoption("--no-kernel", action="store_true",
                    help="deselect kernel tests (host-only run)")
    # 80 min: a whole-suite guest took 60-70 min beside one other on a
    # 2-core machine (42-50 min since 2026-12-05), and CI's 90 min must
    # still hold the build before it
    group.addoption("--guest-timeout", type=float, default=4800,
                    help="seconds one guest may run (default 4800)")
    group.addoption("--guest-slots", type=int, default=2,
                    help="guests booted at once (default 2: one per core of this "
                         "machine; the others wait for a free slot)")
    group.addoption("--guest-report", help=argparse.SUPPRESS)
    group.addoption("--tier", choices=sorted(tiers.TIERS),
                    help="only the kernel tests of this tier (tests/tiers.py)")
    group.addoption("--core-kver", action="append", default=[],
                    help="kernel release of a secondary line: only the core tier "
                         "runs on it (repeatable; beside --kver's whole suite)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "last: run after the other kernel tests of a guest")
    tiers.active = config.getoption("tier")
    if not IN_GUEST:
        guest.end_guests_on_sigterm()
        config.pluginmanager.register(HostRunner(config), "lvs-host-runner")
    elif config.getoption("guest_report"):
        config.pluginmanager.register(GuestReporter(config), "lvs-guest-reporter")


def kernel_targets(config: pytest.Config) -> list[str]:
    """Releases to run kernel tests on (``--kver debug``: the debug kernel's)."""
    if IN_GUEST:
        return [os.uname().release]
    try:
        chosen = [kbuild.resolve_kver(k) for k in config.getoption("kver")]
    except kbuild.BuildError as exc:
        raise pytest.UsageError(str(exc)) from exc
    core = [k for k in config.getoption("core_kver") if k not in chosen]
    return (chosen or ([] if core else kbuild.installed_kernels())) + core


def is_secondary(config: pytest.Config, kver: str | None) -> bool:
    """Whether ``kver`` is a secondary line's (``--core-kver``, not ``--kver``)."""
    return kver in config.getoption("core_kver") and kver not in config.getoption("kver")


def tier_of(config: pytest.Config, kver: str | None) -> str | None:
    """The tier a kernel's tests are chosen by: ``core`` for a secondary
    line, else ``--tier`` (None: every test)."""
    return "core" if is_secondary(config, kver) else config.getoption("tier")


#: How much longer than on a Debian kernel a guest of a kernel built here
#: may take: KASAN, lockdep and kmemleak slow the emulated kernel down.
LOCAL_KERNEL_SLOWDOWN = 3


@pytest.fixture(autouse=True)
def kver(request: pytest.FixtureRequest) -> str:
    """The kernel a kernel test runs on (the running one inside the guest)."""
    return getattr(request, "param", os.uname().release)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("kernel") and "kver" in metafunc.fixturenames:
        metafunc.parametrize("kver", kernel_targets(metafunc.config))


def _kver_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("kver") if callspec else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("no_kernel"):
        kept = [i for i in items if not i.get_closest_marker("kernel")]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
    tier = config.getoption("tier")
    if tier or config.getoption("core_kver"):
        def wanted(item: pytest.Item) -> bool:
            chosen = tier_of(config, _kver_of(item)) if item.get_closest_marker("kernel") \
                else tier
            return chosen is None or tiers.in_tier(item.nodeid, chosen)
        kept = [i for i in items if wanted(i)]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
    whole = [k for k in kernel_targets(config) if tier_of(config, k) is None]
    if len(whole) > 1:
        # tests of the tooling (tiers.ONCE): on the first whole-suite kernel only
        kept = [i for i in items if _kver_of(i) in (None, whole[0])
                or tiers.entry_of(i.nodeid, tiers.ONCE) is None]
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
    # Host tests first; then kernel tests grouped by kernel, "last" ones last;
    # in a tier, in the order of its entries.
    order = {k: n for n, k in enumerate(kernel_targets(config))}

    def key(item: pytest.Item) -> tuple[int, int, int, int]:
        if not item.get_closest_marker("kernel"):
            return (0, 0, 0, 0)
        chosen = tier_of(config, _kver_of(item))
        in_tier = tiers.position(item.nodeid, chosen) if chosen else 0
        return (1, order.get(_kver_of(item) or "", 99), bool(item.get_closest_marker("last")),
                in_tier or 0)

    items.sort(key=key)


class GuestReporter:
    """Inside the guest: every test report as one JSON line, written at once;
    and the start of every test in the kernel log, so that the console of a
    guest that crashed says which test was running."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.path = Path(config.getoption("guest_report"))

    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        mark_log(TEST_START + nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config,
                                                              report=report)
        with self.path.open("a") as out:
            out.write(json.dumps(data) + "\n")


class HostRunner:
    """On the host: boot a guest per kernel, replay the reports it wrote."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: dict[str, dict[str, list[pytest.TestReport]]] = {}
        self.status: dict[str, int] = {}
        self.items: dict[str, list[pytest.Item]] = {}
        self.done: dict[str, threading.Event] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            if item.get_closest_marker("kernel"):
                self.items.setdefault(_kver_of(item) or "?", []).append(item)

    def _write(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)

    def _run_guest(self, kver: str) -> None:
        out = RESULTS / kver
        out.mkdir(parents=True, exist_ok=True)
        report = out / "report.jsonl"
        report.unlink(missing_ok=True)
        ids = out / "nodeids.txt"
        ids.write_text("\n".join(i.nodeid for i in self.items[kver]) + "\n")
        scale = LOCAL_KERNEL_SLOWDOWN if kbuild.local_kernel(kver) else 1
        tier = tier_of(self.config, kver)
        cmd = (f"{sys.executable} -m pytest -q -p no:cacheprovider "
               f"--guest-report {report} --timeout {900 * scale} "
               f"{f'--tier {tier} ' if tier else ''}@{ids}")
        console = out / "console.log"
        self._write(f"\n[guest {kver}] booting for {len(self.items[kver])} kernel tests; "
                    f"console: {console}")
        started = time.monotonic()
        with contextlib.ExitStack() as devices:
            cfg = guest.GuestConfig(kver, rwdirs=[out], qemu_opts=self._devices(devices),
                                    timeout=self.config.getoption("guest_timeout") * scale)
            try:
                self.status[kver] = guest.run(cfg, cmd, console=console, quiet=True)
            except guest.GuestError as exc:
                console.write_text(f"{exc}\n")
                self.status[kver] = -1
        results: dict[str, list[pytest.TestReport]] = {}
        if report.exists():
            for line in report.read_text().splitlines():
                rep = self.config.hook.pytest_report_from_serializable(
                    config=self.config, data=json.loads(line))
                if rep.skipped and isinstance(rep.longrepr, list):  # JSON made it a list
                    rep.longrepr = tuple(rep.longrepr)
                results.setdefault(rep.nodeid, []).append(rep)
        self.results[kver] = results
        self._write(f"[guest {kver}] done in {time.monotonic() - started:.0f} s, "
                    f"exit status {self.status[kver]}")

    def _devices(self, stack: contextlib.ExitStack) -> list[str]:
        """QEMU arguments of GUEST_DEVICES; their cleanup joins ``stack``."""
        opts: list[str] = []
        for device in GUEST_DEVICES:
            try:
                opts += stack.enter_context(device())
            except guest_nic.TapError as exc:
                self._write(f"[guest] no {device.__name__} in the guest: {exc}")
        return opts

    def _missing_report(self, item: pytest.Item, kver: str) -> pytest.TestReport:
        console = RESULTS / kver / "console.log"
        shown = console_excerpt(console.read_text(errors="replace")) if console.exists() else ""
        text = (f"no result from the guest for this test (guest exit status "
                f"{self.status.get(kver)}); console ({console}), the last test started, "
                f"the first kernel problem and the end:\n{shown}")
        return pytest.TestReport(item.nodeid, item.location, {}, "failed", text, "call", [])

    def _run_guest_safely(self, kver: str) -> None:
        try:
            self._run_guest(kver)
        except Exception as exc:   # reported as missing results of its tests
            self._write(f"[guest {kver}] harness error: {exc!r}")
            self.status.setdefault(kver, -1)
        finally:
            self.results.setdefault(kver, {})

    def _start_guests(self) -> None:
        """Boot every kernel's guest, ``--guest-slots`` of them at a time, in
        the order of the kernels (the primary lines first): a slot that
        frees takes the next kernel at once, so a secondary line's short
        guest runs while the other primary line's long one is still busy.
        A guest's emulator keeps about one core busy, so two fit this 2-core
        machine (6.1's whole suite: 52 min alone, about as long beside
        another guest) and five at once ran past their time."""
        pending = [k for k in kernel_targets(self.config) if k in self.items]
        pending += [k for k in self.items if k not in pending]
        for one in pending:
            self.done[one] = threading.Event()
        lock = threading.Lock()

        def slot() -> None:
            while True:
                with lock:
                    if not pending:
                        return
                    one = pending.pop(0)
                try:
                    self._run_guest_safely(one)
                finally:
                    self.done[one].set()

        for n in range(max(1, min(self.config.getoption("guest_slots"), len(pending)))):
            threading.Thread(target=slot, name=f"guest-slot-{n}", daemon=True).start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        if not item.get_closest_marker("kernel"):
            return None
        kver = _kver_of(item) or "?"
        if not self.done:
            self._start_guests()
        self.done[kver].wait()
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        reports = self.results[kver].get(item.nodeid) or [self._missing_report(item, kver)]
        for rep in reports:
            item.ihook.pytest_runtest_logreport(report=rep)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True
