"""The kernel's own IPVS selftest (tools/testing/selftests) against our build."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.kbuild import ROOT

pytestmark = pytest.mark.kernel

# 6.1 keeps it in netfilter/, 6.12 in net/netfilter/ with lib.sh files.
LOCATIONS = ("tools/testing/selftests/netfilter", "tools/testing/selftests/net/netfilter")


# The script gives socat 0.2 s to start listening, too little in an
# emulated guest; this wrapper lets the client retry its connect instead.
SOCAT_RETRY = """#!/bin/sh
args=""
for a in "$@"; do
    case "$a" in TCP:*|TCP4:*|TCP6:*) a="$a,retry=50,interval=0.2" ;; esac
    args="$args '$a'"
done
eval exec /usr/bin/socat $args
"""

# Its `timeout 2 socat ...` client and `timeout 5 socat ...` server assume
# real hardware; under emulation, with a module loaded on first use, two
# seconds are sometimes not enough.  Ten times the duration instead.
TIMEOUT_SCALED = """#!/bin/sh
case "$1" in
    *[!0-9.]*|"") exec /usr/bin/timeout "$@" ;;
esac
d=$(awk "BEGIN { print $1 * 10 }")
shift
exec /usr/bin/timeout "$d" "$@"
"""

# 6.1's script uses nc: its server (no timeout) waits for a client that
# gave up if it came before the server listened, and the script hangs.
# The client retries its connect like the socat one above.
NC_RETRY = """#!/bin/sh
case " $* " in
    *" -l "*) exec /usr/bin/nc "$@" ;;
esac
i=0
until /usr/bin/nc "$@"; do
    i=$((i + 1))
    [ "$i" -lt 50 ] || exit 1
    sleep 0.2
done
"""


def test_upstream_ipvs_selftest(kver, tmp_path):
    upstream = ROOT / "build" / kver / "upstream"
    script = next((upstream / d / "ipvs.sh" for d in LOCATIONS
                   if (upstream / d / "ipvs.sh").exists()), None)
    assert script is not None, f"no ipvs.sh under {upstream}"
    # Copy the selftests folder so relative `source lib.sh` lines resolve.
    selftests = upstream / "tools/testing/selftests"
    shutil.copytree(selftests, tmp_path / "selftests")
    workdir = tmp_path / "selftests" / script.parent.relative_to(selftests)
    shim = tmp_path / "bin"
    shim.mkdir()
    for name, text in (("socat", SOCAT_RETRY), ("timeout", TIMEOUT_SCALED),
                       ("nc", NC_RETRY)):
        (shim / name).write_text(text)
        (shim / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{shim}:{os.environ['PATH']}")
    res = subprocess.run(["bash", "./ipvs.sh"], cwd=workdir, capture_output=True,
                         text=True, timeout=900, env=env)
    output = res.stdout + res.stderr
    assert res.returncode == 0, output
    assert "[PASS]" in output or "PASS" in output, output
