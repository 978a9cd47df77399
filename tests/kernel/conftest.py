"""Fixtures for tests that run inside the guest (see tests/guest_plugin.py)."""

from __future__ import annotations

import pytest

from tools.netlab import Topology


@pytest.fixture
def topo():
    """client, lb and two real servers routed through the balancer."""
    with Topology(n_rs=2) as topology:
        yield topology


@pytest.fixture
def kmsg_mark():
    """Write a marker into the kernel log; returns a function that reads the
    log since then."""
    from tools.guest_init import kernel_log, mark_log

    marker = f"lvs-test: mark {id(object())}"
    mark_log(marker)

    def since() -> str:
        text = kernel_log(since_mark=False)
        return text[text.rindex(marker):] if marker in text else text

    return since
