"""The tiers of tests/tiers.py: what an entry selects, and that each names a real test."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests import tiers
from tools.kbuild import ROOT


def test_an_entry_selects_a_file_a_test_or_some_of_its_parameters(monkeypatch):
    monkeypatch.setitem(tiers.TIERS, "t", ("test_a.py", "test_b.py::test_x",
                                           "test_c.py::test_y[ipv6"))
    selected = ["tests/kernel/test_a.py::test_any[K]",
                "tests/kernel/test_b.py::test_x[ipv4-K]", "tests/kernel/test_b.py::test_x",
                "tests/kernel/test_c.py::test_y[ipv6-K]"]
    left = ["tests/kernel/test_b.py::test_x_more[K]", "tests/kernel/test_c.py::test_y[ipv4-K]",
            "tests/kernel/test_ab.py::test_z[K]", "tests/unit/test_a.py::test_any"]
    assert [n for n in selected + left if tiers.in_tier(n, "t")] == selected


def test_an_unknown_tier_is_an_error():
    with pytest.raises(KeyError):
        tiers.in_tier("tests/kernel/test_a.py::test_x", "nope")


@pytest.mark.parametrize("entry", tiers.SANITIZER)
def test_every_sanitizer_entry_names_a_kernel_test_that_exists(entry):
    """A renamed test would silently leave the tier."""
    path, _, test = entry.partition("::")
    source = ROOT / "tests" / "kernel" / path
    assert source.is_file(), entry
    if test:
        name = test.split("[")[0]
        assert re.search(rf"^def {re.escape(name)}\(", source.read_text(), re.M), entry


def test_reduced_counts_only_in_the_sanitizer_tier(monkeypatch):
    monkeypatch.setattr(tiers, "active", None)
    assert tiers.reduced(100, 10) == 100
    monkeypatch.setattr(tiers, "active", "sanitizer")
    assert tiers.reduced(100, 10) == 10


def test_tests_of_a_tier_are_ordered_by_its_entries(monkeypatch):
    monkeypatch.setitem(tiers.TIERS, "t", ("test_b.py::test_x", "test_a.py"))
    assert tiers.position("tests/kernel/test_a.py::test_any[K]", "t") == 1
    assert tiers.position("tests/kernel/test_b.py::test_x[K]", "t") == 0
    assert tiers.position("tests/kernel/test_c.py::test_x[K]", "t") is None


def test_the_sanitizer_tier_starts_with_the_fuzz_and_ends_with_the_log_check():
    assert tiers.SANITIZER[0] == "test_netlink_fuzz.py"
    assert tiers.SANITIZER[-1] == "test_zz_kernel_log.py"


def collected(*options: str) -> list[str]:
    """The kernel tests' node ids that ``pytest --collect-only OPTIONS`` lists."""
    res = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "tests/kernel", *options],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return [line for line in res.stdout.splitlines() if line.startswith("tests/kernel/")]


def test_a_secondary_kernel_runs_the_core_tier_beside_a_whole_suite():
    """``--core-kver K`` beside ``--kver P``: P gets every kernel test, K only
    the core tier's, in the tier's order (what ./inv test asks of pytest)."""
    from tools import kbuild
    installed = kbuild.installed_kernels()
    if not installed:
        pytest.skip("no 6.1/6.12 kernel with headers here")
    full, secondary = installed[0], "9.9.9-secondary-amd64"
    ids = collected("--kver", full, "--core-kver", secondary)
    on_full = [n for n in ids if full in n]
    on_core = [n for n in ids if secondary in n]
    assert len(on_full) + len(on_core) == len(ids)
    assert on_core and all(tiers.in_tier(n, "core") for n in on_core)
    assert any(not tiers.in_tier(n, "core") for n in on_full)
    assert {n.replace(secondary, full) for n in on_core} == \
        {n for n in on_full if tiers.in_tier(n, "core")}
    positions = [tiers.position(n, "core") for n in on_core]
    assert positions == sorted(positions)


def test_tooling_tests_run_on_the_first_whole_suite_kernel_only():
    """tiers.ONCE: with two whole-suite kernels the benchmark's smoke test is
    collected for the first only; every other kernel test for both."""
    from tools import kbuild
    installed = kbuild.installed_kernels()
    if len(installed) < 2:
        pytest.skip("needs two installed 6.1/6.12 kernels")
    first, second = installed[:2]
    ids = collected("--kver", first, "--kver", second)
    once = [n for n in ids if tiers.entry_of(n, tiers.ONCE) is not None]
    assert once and all(first in n for n in once)
    others = [n for n in ids if n not in once]
    assert {n.replace(second, first) for n in others if second in n} == \
        {n for n in others if first in n}


@pytest.mark.parametrize("entry", tiers.ONCE)
def test_every_once_entry_names_a_kernel_test_file(entry):
    assert (ROOT / tiers.KERNEL_TESTS / entry.split("::")[0]).is_file()
