"""The kernel's own IPVS selftest (tools/testing/selftests) against our build."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tools.kbuild import ROOT

pytestmark = pytest.mark.kernel

# 6.1 keeps it in netfilter/, 6.12 in net/netfilter/ with lib.sh files.
LOCATIONS = ("tools/testing/selftests/netfilter", "tools/testing/selftests/net/netfilter")


def test_upstream_ipvs_selftest(kver, tmp_path):
    upstream = ROOT / "build" / kver / "upstream"
    script = next((upstream / d / "ipvs.sh" for d in LOCATIONS
                   if (upstream / d / "ipvs.sh").exists()), None)
    assert script is not None, f"no ipvs.sh under {upstream}"
    # Copy the selftests folder so relative `source lib.sh` lines resolve.
    selftests = upstream / "tools/testing/selftests"
    shutil.copytree(selftests, tmp_path / "selftests")
    workdir = tmp_path / "selftests" / script.parent.relative_to(selftests)
    res = subprocess.run(["bash", "./ipvs.sh"], cwd=workdir, capture_output=True,
                         text=True, timeout=900)
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    assert "[PASS]" in output or "PASS" in output, output
