"""The API layer without a kernel: which typed error, with which words,
each refusal becomes (ipvsadm_py.api.error_for)."""

from __future__ import annotations

import errno as E

import pytest
from netaddr import IPAddress

from ipvsadm_py import errors
from ipvsadm_py.api import error_for
from ipvsadm_py.model import Daemon, Dest, LocalAddress, Protocol, Service, Timeouts
from ipvsadm_py.verbs import Kind, Request, Verb

SVC = Service(addr=IPAddress("10.0.0.1"), port=80, scheduler="wrr", pe_name="sip")
DEST = Dest(addr=IPAddress("10.0.2.11"), port=8080)
LADDR = LocalAddress(IPAddress("10.0.3.1"))
MASTER = Daemon("master", "eth0", 3)


@pytest.mark.parametrize("req,err,kind,message", [
    (Request.add_service(SVC), E.EEXIST, errors.ServiceExists,
     "service TCP 10.0.0.1:80 already exists"),
    (Request.edit_service(SVC), E.ENOENT, errors.NotFound,
     "scheduler wrr or persistence engine sip not found (is its module, e.g. ip_vs_wrr, "
     "available?)"),
    (Request.delete_service(SVC), E.ESRCH, errors.NoSuchService,
     "service TCP 10.0.0.1:80 does not exist"),
    (Request.add_dest(SVC, DEST), E.ESRCH, errors.NoSuchService,
     "service TCP 10.0.0.1:80 does not exist"),
    (Request.add_dest(SVC, DEST), E.EEXIST, errors.DestExists,
     "real server 10.0.2.11:8080 of service TCP 10.0.0.1:80 already exists"),
    (Request.delete_dest(SVC, DEST), E.ENOENT, errors.NoSuchDest,
     "real server 10.0.2.11:8080 is not in service TCP 10.0.0.1:80"),
    (Request.add_laddr(SVC, LADDR), E.EEXIST, errors.DestExists,
     "local address 10.0.3.1 of service TCP 10.0.0.1:80 already exists"),
    (Request.delete_laddr(SVC, LADDR), E.ENOENT, errors.NoSuchDest,
     "local address 10.0.3.1 of service TCP 10.0.0.1:80 does not exist"),
    (Request.add_laddr(SVC, LADDR), E.EOPNOTSUPP, errors.Unsupported,
     "the kernel does not support local addresses (the FULLNAT side of this ip_vs module "
     "is missing)"),
    (Request.start_daemon(MASTER), E.EEXIST, errors.DaemonRunning,
     "master sync daemon is already running"),
    (Request.stop_daemon(MASTER), E.ESRCH, errors.NoDaemon,
     "no master sync daemon is running"),
    (Request.flush(), E.EPERM, errors.PermissionDenied,
     "permission denied: needs CAP_NET_ADMIN"),
    (Request.add_dest(SVC, DEST), E.EINVAL, errors.KernelRefused,
     "the kernel refused to add dest real server 10.0.2.11:8080 of service TCP "
     "10.0.0.1:80: invalid argument (bad address family, address not unicast, bad value, "
     "or wrong module version)"),
    (Request.edit_dest(SVC, DEST), E.ERANGE, errors.KernelRefused,
     "the kernel refused to edit dest real server 10.0.2.11:8080 of service TCP "
     "10.0.0.1:80: value out of range (weight < 0 or lower threshold above the upper?)"),
    (Request.set_timeouts(Timeouts(1, 2, 3)), E.EBUSY, errors.KernelRefused,
     "the kernel refused to set timeouts IPVS table: EBUSY (Device or resource busy)"),
    (Request(Verb.LIST_DESTS, SVC), E.ENOENT, errors.KernelRefused,
     "the kernel refused to list dests service TCP 10.0.0.1:80: ENOENT (No such file or "
     "directory)"),
])
def test_refusals_become_typed_errors(req, err, kind, message):
    error = error_for(req, err)
    assert type(error) is kind and str(error) == message and error.errno == err


def test_every_verb_has_a_kind_and_a_command():
    from ipvsadm_py import codec

    assert set(codec.COMMANDS) == set(Verb)
    assert {verb.kind for verb in Verb} == set(Kind)


def test_a_refused_local_address_says_which_and_why():
    """EINVAL for a local address is about the address: the message names
    it, its service and what the kernel wants."""
    svc = Service(protocol=Protocol.TCP, addr=IPAddress("10.0.0.100"), port=80)
    req = Request.add_laddr(svc, LocalAddress(addr=IPAddress("2001:db8::1")))
    exc = error_for(req, E.EINVAL)
    assert isinstance(exc, errors.KernelRefused) and exc.errno == E.EINVAL
    text = str(exc)
    assert "local address 2001:db8::1 of service" in text
    assert "10.0.0.100:80" in text and "address family" in text


def test_einval_for_a_local_address_listing_is_the_generic_refusal():
    """Listing local addresses names no address, so its EINVAL does not
    blame one."""
    exc = error_for(Request(Verb.LIST_LADDRS, SVC), E.EINVAL)
    assert "address family" in str(exc) and "not a unicast address of" not in str(exc)


class _Chan:
    """dump_many of nl.Channel: one answer (replies or an error) per dump."""

    def __init__(self, answers):
        self.answers = answers

    def dump_many(self, requests):
        assert len(requests) == len(self.answers)
        return self.answers


def test_laddr_table_leaves_out_a_service_deleted_meanwhile():
    from types import SimpleNamespace

    from ipvsadm_py import nl
    from ipvsadm_py.api import IPVS

    other = Service(addr=IPAddress("10.0.0.2"), port=80)
    reply = SimpleNamespace(attrs={"laddr": {"addr": IPAddress("10.0.3.1").packed + bytes(12),
                                             "port_conflict": 2, "conn_counts": 5}})
    ipvs = IPVS.__new__(IPVS)
    ipvs.chan = _Chan([nl.NetlinkError(E.ESRCH), [reply]])
    rows = ipvs.laddr_table([SVC, other])
    assert [(svc, [(la.describe(), la.port_conflicts, la.conns) for la in las])
            for svc, las in rows] == [(other, [("10.0.3.1", 2, 5)])]
    ipvs.chan = _Chan([nl.NetlinkError(E.EPERM)])
    with pytest.raises(errors.PermissionDenied):
        ipvs.laddr_table([SVC])
