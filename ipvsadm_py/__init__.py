"""ipvsadm_py: IPVS (with the FULLNAT and SYNPROXY extensions) from Python.

The library: :class:`IPVS` (verbs on the table), :class:`Request` (changes
for ``IPVS.run``), and the model (:class:`Service`, :class:`Dest`,
:class:`Forward`, ...).  The layers are described in docs/architecture.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

from ipvsadm_py.errors import IPVSError  # noqa: E402

_API = ("IPVS",)
_VERBS = ("Request", "Verb")
_MODEL = ("Service", "Dest", "LocalAddress", "Timeouts", "Daemon", "Info", "Stats",
          "Forward", "TunnelType", "TunnelCsum", "SchedFlag", "DaemonState", "Protocol")
__all__ = [*_API, *_VERBS, *_MODEL, "IPVSError", "__version__"]


def __getattr__(name: str):
    """Import the library lazily, so that ``ipvsadm-py -h`` stays fast."""
    if name in _API:
        from ipvsadm_py import api
        return getattr(api, name)
    if name in _VERBS:
        from ipvsadm_py import verbs
        return getattr(verbs, name)
    if name in _MODEL:
        from ipvsadm_py import model
        return getattr(model, name)
    raise AttributeError(name)
