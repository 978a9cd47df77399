"""Health of the real servers where keepalived runs (``--keepalived-conf``).

keepalived writes its health decisions into the kernel's table: a real
server whose checks fail is removed, or kept with weight 0 when it has
``inhibit_on_failure``; when they pass again it is added back with its
configured weight.  So the health of each real server of the configuration
is what the table shows for it, compared with the configuration read by our
own parser (:mod:`ipvsadm_py.config.keepalived_conf`):

- in the table with a weight above 0, or with exactly its configured weight
  (a server configured with weight 0): healthy (1);
- absent, its service absent, or weight 0 while the configuration gives it
  more: down (0).

Why not keepalived's own state: keepalived 2.2.7 dumps it on the DATA
signal (``--signum=DATA``: its checker process writes
``keepalived_check.data``, a text for people), which needs its pid, root and
a signal per scrape; the table is what forwarding obeys and is read at each
scrape anyway (docs/monitoring/README.md, "Health state").  A server
that a ``MISC_CHECK`` with ``misc_dynamic`` gave weight 0 counts as down,
as it takes no new connections.

The file is read again when its modification time changes; a file that no
longer reads (a half-written edit) keeps the last good reading and is logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from ipvsadm_py.config.desired import ConfigError, ServiceSpec
from ipvsadm_py.config.keepalived_conf import load
from ipvsadm_py.model import Dest, Service

log = logging.getLogger("lvs-exporter")


class KeepalivedConf:
    """The real servers a keepalived configuration file asks for, read
    again when the file changes.  :meth:`check` at start raises
    ConfigError/OSError for a file that cannot be read."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._stamp: tuple[int, int] | None = None
        self._services: list[ServiceSpec] = []
        self._broken: str | None = None

    def check(self) -> None:
        """Read it now; raise if it cannot be read."""
        st = os.stat(self.path)
        self._services = load(self.path).services
        self._stamp = (st.st_mtime_ns, st.st_size)

    def services(self) -> list[ServiceSpec]:
        """The services of the file as last read successfully."""
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._services = load(self.path).services
                self._stamp = stamp
            self._note(None)
        except (OSError, ConfigError) as exc:
            self._note(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return self._services

    def _note(self, error: str | None) -> None:
        if error != self._broken:
            if error:
                log.warning("cannot read %s (keeping the last reading): %s", self.path, error)
            else:
                log.info("read %s again", self.path)
        self._broken = error


def healthy(configured: Dest, live: Dest | None) -> bool:
    """Whether a configured real server is up by the kernel's table."""
    if live is None:
        return False
    return live.weight > 0 or live.weight == configured.weight


def health(services: list[ServiceSpec], table: list[tuple[Service, list[Dest]]]
           ) -> Iterator[tuple[Service, Dest, bool]]:
    """Each configured real server with its health."""
    live = {svc.key: {d.key: d for d in dests} for svc, dests in table}
    for spec in services:
        dests = live.get(spec.service.key, {})
        for dest in spec.dests:
            yield spec.service, dest, healthy(dest, dests.get(dest.key))
