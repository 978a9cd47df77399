"""A SIGTERM to the host's test run ends the guests it started (atexit
alone does not run on a signal): real processes, no guest needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tools.kbuild import ROOT

CHILD = """
import subprocess, sys, time
from tools import guest
guest.end_guests_on_sigterm()
proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
guest._LIVE.add(proc)
print(proc.pid, flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie that nobody reaped is gone for our purpose
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"


def test_sigterm_ends_the_live_guests():
    runner = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        guest_pid = int(runner.stdout.readline())
        assert _alive(guest_pid)
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == -signal.SIGTERM   # still dies of it
        deadline = time.monotonic() + 10
        while _alive(guest_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(guest_pid)
    finally:
        runner.kill()
