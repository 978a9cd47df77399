"""ipvsadm's order of services and real servers (ipvsadm_py.order)."""

from __future__ import annotations

import random

from netaddr import IPAddress

from ipvsadm_py import model, order


def _svc(addr: str, port: int = 80, fwmark: int = 0) -> model.Service:
    if fwmark:
        return model.Service(fwmark=fwmark, protocol=0)
    a = IPAddress(addr)
    return model.Service(addr=a, port=port, af=model.af_of(a.version))


def _dest(addr: str, port: int = 80) -> model.Dest:
    a = IPAddress(addr)
    return model.Dest(addr=a, port=port, af=model.af_of(a.version))


def test_sort_keeps_ipvsadm_wrapping_comparison():
    """ipvsadm compares addresses by a 32-bit subtraction, so 10.x sorts
    after 200.x in some orders; glibc's merge sort decides which."""
    svcs = [_svc("10.0.0.1"), _svc("200.0.0.1"), _svc("192.168.1.1"), _svc("172.16.0.1")]
    got = [str(s.addr) for s in order.sort_services(svcs)]
    want = [str(s.addr) for s in order.msort(svcs, order.compare_services)]
    assert got == want
    assert got != sorted(got, key=lambda a: IPAddress(a))   # the quirk is real


def test_sort_fast_path_equals_merge_sort():
    rnd = random.Random(7)
    svcs = [_svc(f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
                 rnd.randrange(1, 65535)) for _ in range(300)]
    svcs += [_svc("", fwmark=m) for m in (3, 1, 2)]
    assert order.sort_services(svcs) == order.msort(svcs, order.compare_services)


def test_dest_sort_fast_path_equals_merge_sort():
    rnd = random.Random(8)
    dests = [_dest(f"{rnd.choice([10, 200])}.0.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
                   rnd.randrange(1, 65535)) for _ in range(200)]
    near = [d for d in dests if str(d.addr).startswith("10.")]
    assert order.sort_dests(near) == order.msort(near, order.compare_dests)
    assert order.sort_dests(dests) == order.msort(dests, order.compare_dests)
    six = [_dest(f"2001:db8::{rnd.randrange(1, 65535):x}", 80) for _ in range(50)]
    assert order.sort_dests(six) == order.msort(six, order.compare_dests)
