"""netlab.stop_process: a process that honours SIGTERM ends by it; one that
ignores it is killed after the timeout; either way it is reaped."""

from __future__ import annotations

import signal
import subprocess
import sys

from tools import netlab


def test_a_process_that_honours_sigterm_ends_by_it():
    proc = subprocess.Popen(["sleep", "60"])
    netlab.stop_process(proc, timeout=10)
    assert proc.returncode == -signal.SIGTERM


def test_a_process_that_ignores_sigterm_is_killed_after_the_timeout():
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    netlab.stop_process(proc, timeout=0.5)
    assert proc.returncode == -signal.SIGKILL
    proc.stdout.close()
