"""./inv in a second checkout on a machine that already ran it (as CI does).

The copy gets its own .venv; the system packages are shared.  Two forced
bootstrap runs there must succeed and leave every Debian package as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tools import bootstrap

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="the bootstrap may install packages: root"),
    pytest.mark.skipif(not Path("/etc/debian_version").exists(), reason="Debian only"),
]


def dpkg_state() -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version} ${Status}\n"],
                          capture_output=True, text=True, check=True).stdout


def checkout_copy(dest: Path) -> Path:
    """The checkout's files as a fresh clone would have them (plus new files)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard"], cwd=bootstrap.ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = bootstrap.ROOT / name.decode()
        if source.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def test_second_checkout_bootstraps_twice_and_changes_nothing(tmp_path):
    before = dpkg_state()
    copy = checkout_copy(tmp_path / "second")
    env = {**os.environ, "LVS_BOOTSTRAP": "1"}
    for run in (1, 2):
        res = subprocess.run(["./inv", "--list"], cwd=copy, env=env,
                             capture_output=True, text=True, timeout=1800)
        output = res.stdout + res.stderr
        assert res.returncode == 0, f"run {run}:\n{output[-4000:]}"
        assert "apt-get install" not in output, f"run {run} installed packages:\n{output}"
        assert "Available tasks" in res.stdout
        assert (copy / ".venv" / "bin" / "invoke").exists()
    assert dpkg_state() == before
