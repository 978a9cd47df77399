"""ipvsadm_py.api without a kernel: how refusals read."""

from __future__ import annotations

import errno

from netaddr import IPAddress

from ipvsadm_py import LocalAddress, Service, wire
from ipvsadm_py.api import error_for, ops
from ipvsadm_py.errors import KernelRefused


def test_a_refused_local_address_says_which_and_why():
    """EINVAL for a local address is about the address: the message names
    it, its service and what the kernel wants."""
    svc = Service(protocol=wire.IPPROTO_TCP, addr=IPAddress("10.0.0.100"), port=80)
    op = ops.add_laddr(svc, LocalAddress(addr=IPAddress("2001:db8::1")))
    exc = error_for(op, errno.EINVAL)
    assert isinstance(exc, KernelRefused) and exc.errno == errno.EINVAL
    text = str(exc)
    assert "local address 2001:db8::1 of service" in text
    assert "10.0.0.100:80" in text and "address family" in text
