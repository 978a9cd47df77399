"""The host side's guest slots (tests/guest_plugin.py): a slot that frees
takes the next kernel at once, in the order of the kernels."""

from __future__ import annotations

import threading

from tests import guest_plugin


class Options:
    def __init__(self, slots: int) -> None:
        self.slots = slots

    def getoption(self, name: str):
        return {"guest_slots": self.slots}[name]


class Runner(guest_plugin.HostRunner):
    """A HostRunner whose guests are events: a kernel's guest "runs" until
    the test releases it."""

    def __init__(self, kernels: list[str], slots: int) -> None:
        super().__init__(Options(slots))        # type: ignore[arg-type]
        self.items = {k: [] for k in kernels}
        self.release = {k: threading.Event() for k in kernels}
        self.started: list[str] = []
        self.running = threading.Semaphore(0)

    def _run_guest_safely(self, kver: str) -> None:
        self.started.append(kver)
        self.running.release()
        assert self.release[kver].wait(10)


def started_after(runner: Runner, count: int) -> list[str]:
    for _ in range(count):
        assert runner.running.acquire(timeout=10)
    return list(runner.started)


def test_a_freed_slot_takes_the_next_kernel_while_the_other_still_runs(monkeypatch):
    kernels = ["primary-a", "primary-b", "secondary-c", "secondary-d"]
    monkeypatch.setattr(guest_plugin, "kernel_targets", lambda config: kernels)
    runner = Runner(kernels, slots=2)
    runner._start_guests()
    assert sorted(started_after(runner, 2)) == ["primary-a", "primary-b"]

    runner.release["primary-b"].set()
    assert runner.done["primary-b"].wait(10)
    assert started_after(runner, 1)[2] == "secondary-c"
    assert not runner.done["primary-a"].is_set()

    runner.release["secondary-c"].set()
    assert started_after(runner, 1)[3] == "secondary-d"
    for event in runner.release.values():
        event.set()
    assert all(runner.done[k].wait(10) for k in kernels)


def test_one_slot_runs_the_kernels_one_after_another(monkeypatch):
    kernels = ["k1", "k2"]
    monkeypatch.setattr(guest_plugin, "kernel_targets", lambda config: kernels)
    runner = Runner(kernels, slots=1)
    runner._start_guests()
    assert started_after(runner, 1) == ["k1"]
    assert not runner.running.acquire(timeout=0.5)   # k2 waits for the slot
    runner.release["k1"].set()
    assert started_after(runner, 1) == ["k1", "k2"]
    runner.release["k2"].set()
    assert runner.done["k2"].wait(10)
