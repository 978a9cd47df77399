"""The benchmark's quick mode runs in the test guest.

Only the shape of the result is checked: every key is there and is either
a positive number or null with a reason.  Nothing about speed is asserted
(the guest is emulated and the machine shared).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.bench import runner

pytestmark = pytest.mark.kernel


def test_quick_benchmark_reports_every_key():
    had_toa = Path("/sys/module/toa").exists()
    result = runner.run(quick=True)
    # the TOA step unloads toa.ko for its windows without it: back for the tests after
    assert Path("/sys/module/toa").exists() == had_toa
    json.dumps(result)                      # the document is plain JSON
    problems = {}
    for key in runner.KEYS:
        value = result.get(key, "missing")
        if value is None:
            if not result["reasons"].get(key):
                problems[key] = "null without a reason"
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            problems[key] = f"not a positive number: {value!r}"
    assert not problems, (problems, result["reasons"])
    # every feature is in this build: no figure may be "not available yet"
    assert not {k: why for k, why in result["reasons"].items()
                if "not available yet" in why}, result["reasons"]
    for key in ("bytes_per_session_nat", "bytes_per_session_fnat"):
        assert result[key] is None or isinstance(result[key], int)
    assert result["kernel"] and result["guest_cpus"] >= 1 and result["repeats"] == 1
    assert result["quick"] is True
