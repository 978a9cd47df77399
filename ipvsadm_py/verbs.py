"""What can be asked of the kernel, in the model's terms: :class:`Verb` and
:class:`Request` (a verb with the objects it acts on).

A request says nothing about its encoding (:mod:`ipvsadm_py.codec` makes
the message) and nothing about how a refusal is worded
(:func:`ipvsadm_py.api.error_for`).  Changes are built with the class
methods named like the verbs of :class:`ipvsadm_py.api.IPVS` and handed to
``IPVS.run`` to be pipelined::

    ipvs.run([Request.add_dest(svc, Dest(...)) for ...])
"""

from __future__ import annotations

import dataclasses
import enum

from ipvsadm_py.model import Daemon, Dest, LocalAddress, Service, Timeouts


class Kind(enum.StrEnum):
    """What a verb acts on, as far as its errors tell apart."""

    SERVICE = "service"        # adds or edits a service
    DEST = "dest"              # adds, edits or deletes a real server
    LADDR = "laddr"            # a local address (extension)
    DAEMON = "daemon"
    OTHER = "other"


class Verb(enum.StrEnum):
    """Every request; the value is how a message names it (a str: verbs key
    the codec's tables, and str hashing is the fast kind)."""

    ADD_SERVICE = "add service"
    EDIT_SERVICE = "edit service"
    DELETE_SERVICE = "delete service"
    ZERO = "zero"
    FLUSH = "flush"
    ADD_DEST = "add dest"
    EDIT_DEST = "edit dest"
    DELETE_DEST = "delete dest"
    SET_TIMEOUTS = "set timeouts"
    START_DAEMON = "start daemon"
    STOP_DAEMON = "stop daemon"
    ADD_LADDR = "add laddr"
    DELETE_LADDR = "delete laddr"
    GET_INFO = "get info"
    LIST_SERVICES = "list services"
    GET_SERVICE = "get service"
    LIST_DESTS = "list dests"
    GET_TIMEOUTS = "get timeouts"
    LIST_DAEMONS = "list daemons"
    LIST_LADDRS = "list laddr"

    @property
    def kind(self) -> Kind:
        return _KINDS.get(self, Kind.OTHER)


_KINDS = {
    Verb.ADD_SERVICE: Kind.SERVICE, Verb.EDIT_SERVICE: Kind.SERVICE,
    Verb.ADD_DEST: Kind.DEST, Verb.EDIT_DEST: Kind.DEST, Verb.DELETE_DEST: Kind.DEST,
    Verb.ADD_LADDR: Kind.LADDR, Verb.DELETE_LADDR: Kind.LADDR, Verb.LIST_LADDRS: Kind.LADDR,
    Verb.START_DAEMON: Kind.DAEMON, Verb.STOP_DAEMON: Kind.DAEMON,
}


@dataclasses.dataclass
class Request:
    """One request: a verb and the objects it names."""

    verb: Verb
    service: Service | None = None
    dest: Dest | None = None
    laddr: LocalAddress | None = None
    daemon: Daemon | None = None
    timeouts: Timeouts | None = None

    def subject(self) -> str:
        """The words naming what the request acts on."""
        if self.laddr is not None and self.service is not None:
            return f"local address {self.laddr.describe()} of service " \
                   f"{self.service.describe()}"
        if self.dest is not None and self.service is not None:
            return f"real server {self.dest.describe()} of service {self.service.describe()}"
        if self.service is not None:
            return f"service {self.service.describe()}"
        if self.daemon is not None:
            return f"{self.daemon.state} sync daemon"
        return "IPVS table"

    # The changes, named like IPVS's verbs.
    @classmethod
    def add_service(cls, svc: Service) -> Request:
        return cls(Verb.ADD_SERVICE, svc)

    @classmethod
    def edit_service(cls, svc: Service) -> Request:
        return cls(Verb.EDIT_SERVICE, svc)

    @classmethod
    def delete_service(cls, svc: Service) -> Request:
        return cls(Verb.DELETE_SERVICE, svc)

    @classmethod
    def zero(cls, svc: Service | None = None) -> Request:
        """The counters of one service, or of all."""
        return cls(Verb.ZERO, svc)

    @classmethod
    def flush(cls) -> Request:
        return cls(Verb.FLUSH)

    @classmethod
    def add_dest(cls, svc: Service, dest: Dest) -> Request:
        return cls(Verb.ADD_DEST, svc, dest)

    @classmethod
    def edit_dest(cls, svc: Service, dest: Dest) -> Request:
        return cls(Verb.EDIT_DEST, svc, dest)

    @classmethod
    def delete_dest(cls, svc: Service, dest: Dest) -> Request:
        return cls(Verb.DELETE_DEST, svc, dest)

    @classmethod
    def set_timeouts(cls, timeouts: Timeouts) -> Request:
        return cls(Verb.SET_TIMEOUTS, timeouts=timeouts)

    @classmethod
    def start_daemon(cls, daemon: Daemon) -> Request:
        return cls(Verb.START_DAEMON, daemon=daemon)

    @classmethod
    def stop_daemon(cls, daemon: Daemon) -> Request:
        return cls(Verb.STOP_DAEMON, daemon=daemon)

    @classmethod
    def add_laddr(cls, svc: Service, laddr: LocalAddress) -> Request:
        return cls(Verb.ADD_LADDR, svc, laddr=laddr)

    @classmethod
    def delete_laddr(cls, svc: Service, laddr: LocalAddress) -> Request:
        return cls(Verb.DELETE_LADDR, svc, laddr=laddr)
