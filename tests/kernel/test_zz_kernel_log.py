"""Last test of every guest: the kernel log of the whole run is clean."""

from __future__ import annotations

import pytest

from tools.guest_init import kernel_log, kernel_log_problems

pytestmark = [pytest.mark.kernel, pytest.mark.last]


def test_kernel_log_has_no_oops_warn_bug_or_leak():
    problems = kernel_log_problems(kernel_log())
    assert problems == [], "\n".join(problems)
