"""The wire layer and the codec: the struct codec agrees with pyroute2's
(tests/oracles/pyroute2_ipvs.py) on every request, model objects survive the
round trip, and layout plans read what the walk reads."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from netaddr import IPAddress

from ipvsadm_py import abi, codec, model, views, wire
from ipvsadm_py.model import Forward, SchedFlag, TunnelCsum, TunnelType
from ipvsadm_py.verbs import Request
from tests.oracles import pyroute2_ipvs


def _svc(**kw) -> model.Service:
    base = dict(protocol=6, addr=IPAddress("10.0.0.1"), port=80, scheduler="wrr",
                persistent=True, timeout=300, netmask=0xFFFFFF00)
    base.update(kw)
    return model.Service(**base)


SERVICES = [
    _svc(),
    _svc(af=model.AF_INET6, addr=IPAddress("2001:db8::1"), netmask=64, pe_name="sip"),
    model.Service(fwmark=7, protocol=0, scheduler="rr"),
    _svc(persistent=False, synproxy=True, sched_flags=frozenset({SchedFlag.FLAG_1})),
]
DESTS = [
    model.Dest(addr=IPAddress("10.0.2.11"), port=8080, forward=Forward.MASQ, weight=3),
    model.Dest(addr=IPAddress("10.0.2.12"), port=80, forward=Forward.TUNNEL,
               tun_type=TunnelType.GUE, tun_port=6080, tun_csum=TunnelCsum.CSUM),
    model.Dest(addr=IPAddress("10.0.2.13"), port=80, forward=Forward.FULLNAT,
               u_threshold=100, l_threshold=10),
]


def _all_requests():
    for svc in SERVICES:
        yield Request.add_service(svc)
        yield Request.edit_service(svc)
        yield Request.delete_service(svc)
        yield Request.zero(svc)
        for dest in DESTS:
            yield Request.add_dest(svc, dest)
            yield Request.delete_dest(svc, dest)
        yield Request.add_laddr(svc, model.LocalAddress(IPAddress("10.0.3.1")))
    yield Request.flush()
    yield Request.zero()
    yield Request.set_timeouts(model.Timeouts(900, 120, 300))
    yield Request.start_daemon(model.Daemon("master", "eth0", 3, 1400,
                                            IPAddress("239.1.1.1"), 8849, 2))
    yield Request.start_daemon(model.Daemon("backup", "eth1", 4, 0, IPAddress("ff02::1")))
    yield Request.stop_daemon(model.Daemon("backup", "eth1", 4))


def _both(req):
    """The request encoded by wire and by the pyroute2 oracle."""
    cmd, attrs = codec.encode_request(req)
    return (wire.encode(cmd, attrs, family=30, flags=5, seq=9),
            pyroute2_ipvs.encode(cmd, attrs, family=30, flags=5, seq=9))


def _round_trip(req):
    """The request's attributes as the kernel would read them."""
    cmd, attrs = codec.encode_request(req)
    (reply,) = wire.parse_stream(wire.encode(cmd, attrs, family=30, flags=5, seq=1))
    return reply.attrs


@pytest.mark.parametrize("req", list(_all_requests()), ids=lambda req: req.verb.name)
def test_struct_encoder_matches_pyroute2(req):
    fast, reference = _both(req)
    assert fast == reference


def test_remembered_service_encodings_stay_exact():
    """The service attribute's encoder remembers its results: encoding every
    operation twice (the second time from memory) gives pyroute2's bytes,
    and services that differ in one flag bit stay apart."""
    for _ in range(2):
        for req in _all_requests():
            fast, reference = _both(req)
            assert fast == reference
    one = _svc(sched_flags=frozenset({SchedFlag.FLAG_1}))
    two = _svc(sched_flags=frozenset({SchedFlag.FLAG_2}))
    assert wire.encode_attrs(codec.encode_request(Request.add_service(one))[1]) != \
        wire.encode_attrs(codec.encode_request(Request.add_service(two))[1])


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.describe())
def test_service_round_trip(svc):
    back = codec.service_from(_round_trip(Request.add_service(svc))["service"])
    assert back.key == svc.key
    assert (back.scheduler, back.persistent, back.onepacket, back.synproxy, back.sched_flags,
            back.timeout, back.netmask, back.pe_name) == \
        (svc.scheduler, svc.persistent, svc.onepacket, svc.synproxy, svc.sched_flags,
         svc.timeout, svc.netmask, svc.pe_name)


@pytest.mark.parametrize("dest", DESTS, ids=lambda d: d.describe())
def test_dest_round_trip(dest):
    back = codec.dest_from(_round_trip(Request.add_dest(SERVICES[0], dest))["dest"],
                           model.AF_INET)
    for field in ("addr", "port", "forward", "weight", "u_threshold", "l_threshold",
                  "tun_type", "tun_port", "tun_csum"):
        assert getattr(back, field) == getattr(dest, field), field


def test_extension_numbers_are_the_abi():
    assert (abi.CMD_NEW_LADDR, abi.CMD_DEL_LADDR, abi.CMD_GET_LADDR) == (18, 19, 20)
    assert abi.FWD_FULLNAT == 5 and abi.SVC_F_SYNPROXY == 0x8000
    assert codec.FORWARD[Forward.FULLNAT] == 5
    assert [n for n, _ in abi.ipvsmsg.nla_map].index("IPVS_CMD_ATTR_LADDR") == 7
    assert [n for n, _ in abi.laddr.nla_map][1:] == [
        "IPVS_LADDR_ATTR_ADDR", "IPVS_LADDR_ATTR_PORT_CONFLICT", "IPVS_LADDR_ATTR_CONN_COUNTS"]
    # Upstream numbers are never reused: PE_NAME stays 11.
    assert [n for n, _ in abi.service.nla_map].index("IPVS_SVC_ATTR_PE_NAME") == 11


def test_error_and_done_messages():
    import struct
    err = struct.pack("=IHHII", 36, abi.NLMSG_ERROR, 0, 5, 0) + struct.pack("=i", -17) + \
        bytes(16)
    done = struct.pack("=IHHII", 20, abi.NLMSG_DONE, 2, 6, 0) + bytes(4)
    first, second = wire.parse_stream(err + done)
    assert (first.seq, first.error) == (5, 17)
    assert second.type == abi.NLMSG_DONE


def test_family_lookup_agrees_with_pyroute2():
    """The controller request made without pyroute2 finds the same id as
    pyroute2's GenericNetlinkSocket (nlctrl exists on every kernel)."""
    from ipvsadm_py import nl
    assert nl.resolve_family("nlctrl") == pyroute2_ipvs.resolve_family("nlctrl") == 16
    with pytest.raises(nl.FamilyMissing):
        nl.resolve_family("NO_SUCH_FAMILY")


# ---------------------------------------------------------------- addresses
@pytest.mark.parametrize("text", ["10.0.2.11", "2001:db8::11"])
def test_addr_given_packed_or_as_ipaddress_is_the_same(text):
    obj = IPAddress(text)
    by_object, by_bytes = model.Dest(addr=obj, port=80), model.Dest(addr=obj.packed, port=80)
    assert model.packed(by_bytes) == model.packed(by_object) == obj.packed
    assert isinstance(by_bytes.addr, IPAddress) and by_bytes.addr == obj
    assert by_bytes == by_object and by_bytes.key == by_object.key
    assert by_bytes.describe() == by_object.describe()


def test_addr_read_from_the_kernel_is_an_ipaddress():
    back = codec.dest_from(_round_trip(Request.add_dest(SERVICES[0], DESTS[0]))["dest"],
                           model.AF_INET)
    assert model.packed(back) == IPAddress("10.0.2.11").packed
    assert back.addr == IPAddress("10.0.2.11") and back.addr.version == 4


def test_addr_from_the_standard_library_reads_as_ipaddress():
    import ipaddress
    dest = model.Dest(addr=ipaddress.ip_address("2001:db8::11"), port=80)
    assert isinstance(dest.addr, IPAddress) and dest.addr == IPAddress("2001:db8::11")


def test_addr_none_and_replacement():
    dest = model.Dest()
    assert dest.addr is None and model.packed(dest) is None and dest.describe() == "?"
    dest.addr = IPAddress("10.0.0.9")
    assert model.packed(dest) == bytes([10, 0, 0, 9])
    dest.addr = bytes([10, 0, 0, 10])
    assert dest.addr == IPAddress("10.0.0.10")
    dest.addr = None
    assert dest.addr is None and model.packed(dest) is None


def test_zero_address_is_an_address():
    svc = model.Service(protocol=6, addr=IPAddress("0.0.0.0"), port=80)
    assert svc.describe() == "TCP 0.0.0.0:80"
    assert views.service_dict(svc)["address"] == "0.0.0.0"
    assert model.Service(protocol=6, port=80).describe() == "TCP"


def test_short_address_field_from_the_kernel_reads_as_its_number():
    back = codec.dest_from({"addr": bytes([0, 0, 0, 0, 0, 0, 0, 1]),
                            "addr_family": model.AF_INET6}, model.AF_INET)
    assert back.addr == IPAddress("::1")


def test_addr_of_a_wrong_length_is_refused():
    with pytest.raises(ValueError, match="4 or 16 bytes"):
        model.Service(addr=b"\x0a\x00\x00")


def test_local_address_needs_an_address():
    with pytest.raises(TypeError):
        model.LocalAddress()  # type: ignore[call-arg]
    assert views.laddr_dict(model.LocalAddress(IPAddress("10.0.3.1")))["address"] == "10.0.3.1"


def test_listing_and_restoring_do_not_import_netaddr_or_typing():
    """The command's hot paths keep addresses packed: netaddr (about 50
    modules) is not imported to list or restore rules; nor is typing."""
    import subprocess
    import sys
    code = ("import sys\n"
            "from ipvsadm_py import cli, codec, model, wire\n"
            "from ipvsadm_py.cli import fmt\n"
            "cmd = cli.parse('-a -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -m'.split())\n"
            "cli.check(cmd)\n"
            "number, attrs = codec.encode_request(cli.request_of(cmd))\n"
            "(reply,) = wire.parse_stream(wire.encode(number, attrs, family=30, flags=5,"
            " seq=1))\n"
            "svc = codec.service_from(reply.attrs['service'])\n"
            "dest = codec.dest_from(reply.attrs['dest'], svc.af)\n"
            "text = fmt.listing(model.Info(), [(svc, [dest])], fmt.Format(numeric=True))\n"
            "assert '[2001:db8::11]:8080' in text, text\n"
            "print('netaddr' in sys.modules, 'typing' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]


# ---------------------------------------------------------------- layout plans
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ipvsadm"


def _plain(value):
    """Decoded attributes with lazy counters opened, for comparison."""
    if isinstance(value, wire.LazyAttrs):
        return ("lazy", value.attr_set, value.raw, _plain(value.get()))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _messages():
    """(buffer, start, end) of the attributes of every recorded reply of a
    broad rule set, on both kernel lines (tests/fixtures/ipvsadm)."""
    out = []
    for path in sorted(FIXTURES.glob("c-ipvsadm-*.json")):
        replies = json.loads(path.read_text())["replies"]
        chunks = replies["services"] + [h for dump in replies["dests"] for h in dump]
        for chunk in chunks:
            data, pos = bytes.fromhex(chunk), 0
            while pos + 16 <= len(data):
                length = int.from_bytes(data[pos:pos + 4], "little")
                if int.from_bytes(data[pos + 4:pos + 6], "little") > abi.NLMSG_DONE:
                    out.append((data, pos + 20, pos + length))
                pos += (length + 3) & ~3
    return out


def _decode_both(plans, data, start, end):
    """The planned decoding (once it has seen the layout) and the walk, or
    the exception type each raised."""
    results = []
    for fn in (plans.decode, wire.walk_attrs):
        try:
            results.append(_plain(fn(data, start, end, "ipvsmsg")))
        except Exception as exc:   # noqa: BLE001 - the two must fail alike
            results.append(type(exc))
    return results


def test_planned_decoding_equals_walking_on_recorded_replies():
    plans = wire.new_plan_cache()
    messages = _messages()
    assert len(messages) > 40
    for data, start, end in messages:       # the first round makes the plans
        planned, walked = _decode_both(plans, data, start, end)
        assert planned == walked
    plans.walks = 0
    for data, start, end in messages:       # the second reads with them
        assert _plain(plans.decode(data, start, end, "ipvsmsg")) == \
            _plain(wire.walk_attrs(data, start, end, "ipvsmsg"))
    assert plans.walks < len(messages) // 10, "the plans were not used"


def test_planned_decoding_equals_walking_on_damaged_replies():
    """Random damage (headers included) never makes a plan read differently
    from the walk: a changed layout fails the plan's check."""
    plans = wire.new_plan_cache()
    rng = random.Random(7)
    messages = _messages()
    for data, start, end in messages:     # plans for the undamaged layouts
        plans.decode(data, start, end, "ipvsmsg")
    for _ in range(3000):
        data, start, end = rng.choice(messages)
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(start, end)] = rng.randrange(256)
        planned, walked = _decode_both(plans, bytes(damaged), start, end)
        assert planned == walked


def test_decode_attrs_reads_what_the_walk_reads():
    """The entry point the socket layer uses gives the walk's result."""
    for data, start, end in _messages()[:50]:
        assert _plain(wire.decode_attrs(data, start, end, "ipvsmsg")) == \
            _plain(wire.walk_attrs(data, start, end, "ipvsmsg"))
