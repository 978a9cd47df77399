"""ipvsadm_py: IPVS (with the FULLNAT and SYNPROXY extensions) from Python.

Layers: :mod:`ipvsadm_py.wire` (messages), :mod:`ipvsadm_py.nl` (socket),
:mod:`ipvsadm_py.model` and :mod:`ipvsadm_py.api` (objects and verbs),
:mod:`ipvsadm_py.fmt` (output), :mod:`ipvsadm_py.cli` (the command).
"""

from __future__ import annotations

__version__ = "0.1.0"

from ipvsadm_py.errors import IPVSError  # noqa: E402

__all__ = ["IPVS", "IPVSError", "Service", "Dest", "LocalAddress", "Timeouts", "Daemon",
           "Info", "Stats", "ops", "__version__"]


def __getattr__(name: str):
    """Import the API lazily, so that ``ipvsadm-py -h`` stays fast."""
    if name in ("IPVS", "ops", "Op"):
        from ipvsadm_py import api
        return getattr(api, name)
    if name in ("Service", "Dest", "LocalAddress", "Timeouts", "Daemon", "Info", "Stats"):
        from ipvsadm_py import model
        return getattr(model, name)
    raise AttributeError(name)
