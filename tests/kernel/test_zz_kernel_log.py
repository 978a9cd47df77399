"""Last tests of every guest: no leak of ours, and the kernel log of the whole run is clean."""

from __future__ import annotations

import pytest

from tools.guest_init import (KMEMLEAK, kernel_log, kernel_log_problems, kmemleak_records,
                              kmemleak_scan, leak_is_ours)

pytestmark = [pytest.mark.kernel, pytest.mark.last]


def test_kmemleak_finds_no_object_of_ours():
    """On a kernel with kmemleak (the debug kernel): scan twice, then every
    unreferenced object allocated through our modules is a leak.  The base
    kernel's own reports (boot-time allocations kmemleak cannot follow) are
    printed, not failed on."""
    if not KMEMLEAK.exists():
        pytest.skip("this kernel has no kmemleak (CONFIG_DEBUG_KMEMLEAK)")
    records = kmemleak_records(kmemleak_scan())
    ours = [r for r in records if leak_is_ours(r)]
    others = [r for r in records if not leak_is_ours(r)]
    print(f"kmemleak: {len(records)} unreferenced objects, {len(ours)} of ours")
    for record in others:
        print("not ours:\n" + record)
    assert ours == [], "\n\n".join(ours)


def test_kernel_log_has_no_oops_warn_bug_or_leak():
    problems = kernel_log_problems(kernel_log())
    assert problems == [], "\n".join(problems)
