"""FULLNAT local addresses, FULLNAT real servers and SYNPROXY through ipvsadm-py.

These need the kernel side of the extensions.  Whether the running module has
it is asked at run time: the module refuses the local-address commands
(EOPNOTSUPP) when FULLNAT is not merged, and has no synproxy sysctls when
SYNPROXY is not; the tests skip with that reason then.
"""

from __future__ import annotations

import sys

import pytest

from ipvsadm_py.api import IPVS
from tests.kernel.test_ipvsadm_compat import c, ns, py, run  # noqa: F401 (fixture)

pytestmark = pytest.mark.kernel


def _fullnat_or_skip() -> None:
    res = run([sys.executable, "-c", "from ipvsadm_py.api import IPVS; "
               "import sys; sys.exit(0 if IPVS().fullnat_supported() else 3)"])
    if res.returncode == 3:
        pytest.skip("kernel side of FULLNAT not merged yet (the module refuses the "
                    "local-address commands)")
    assert res.returncode == 0, res.stderr


def _synproxy_or_skip() -> None:
    if not IPVS.synproxy_supported():
        pytest.skip("kernel side of SYNPROXY not merged yet (no synproxy sysctls)")


def test_refusal_is_clear_when_fullnat_is_missing(ns):
    res = run([sys.executable, "-c", "from ipvsadm_py.api import IPVS; "
               "print(IPVS().fullnat_supported())"])
    if res.stdout.strip() == "True":
        pytest.skip("this module has FULLNAT")
    c("-A -t 10.0.0.1:80 -s rr")
    res = py("-P -t 10.0.0.1:80 -z 10.0.3.1")
    assert res.returncode == 255
    assert "does not support local addresses" in res.stderr
    res = py("-a -t 10.0.0.1:80 -r 10.0.2.11 -b")
    assert res.returncode == 255 and "FULLNAT" in res.stderr
    assert "10.0.2.11" not in c("-Ln").stdout       # nothing half-done


def test_laddrs_and_fullnat_dests(ns):
    _fullnat_or_skip()
    assert py("-A -t 10.0.0.1:80 -s rr").returncode == 0
    for addr in ("10.0.3.1", "10.0.3.2"):
        res = py(f"-P -t 10.0.0.1:80 -z {addr}")
        assert res.returncode == 0, res.stderr
    assert py("-a -t 10.0.0.1:80 -r 10.0.2.11:8080 -b -w 2").returncode == 0
    listing = py("-Ln").stdout
    assert "  -> 10.0.2.11:8080               FullNat 2" in listing
    laddrs = py("-G -n").stdout.splitlines()
    assert laddrs[0].split() == ["VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS"]
    assert laddrs[1].split() == ["10.0.0.1:80", "2"]
    saved = py("-Sn").stdout
    assert "-a -t 10.0.0.1:80 -r 10.0.2.11:8080 -b -w 2\n" in saved
    assert "-P -t 10.0.0.1:80 -z 10.0.3.1\n" in saved
    py("-C")
    assert py("-R", saved).returncode == 0
    assert py("-Sn").stdout == saved
    assert py("-Q -t 10.0.0.1:80 -z 10.0.3.2").returncode == 0
    assert "10.0.3.2" not in py("-G -n").stdout


def test_synproxy_flag(ns):
    _synproxy_or_skip()
    assert py("-A -t 10.0.0.1:80 -s rr -j enable").returncode == 0
    assert "TCP  10.0.0.1:80 rr synproxy" in py("-Ln").stdout
    assert "-A -t 10.0.0.1:80 -s rr -j enable" in py("-Sn").stdout
    assert py("-E -t 10.0.0.1:80 -s rr -j disable").returncode == 0
    assert "synproxy" not in py("-Ln").stdout


def test_ext_stats_view(ns):
    _fullnat_or_skip()
    res = py("-L --ext-stats")
    assert res.returncode == 0 and "fullnat_add_toa_ok" in res.stdout
