"""Typed errors of ipvsadm-py: each says what was wrong, in words."""

from __future__ import annotations

import errno as E
import os


class IPVSError(Exception):
    """Base of every error this package raises on purpose."""

    errno: int = 0

    def __init__(self, message: str, err: int = 0) -> None:
        super().__init__(message)
        self.errno = err or self.errno


class InvalidInput(IPVSError, ValueError):
    """Bad input, found before anything was sent to the kernel."""

    errno = E.EINVAL


class NotLoaded(IPVSError):
    """The ip_vs module is not loaded (its netlink family is missing)."""

    errno = E.ENOENT


class PermissionDenied(IPVSError, PermissionError):
    errno = E.EPERM


class ServiceExists(IPVSError):
    errno = E.EEXIST


class NoSuchService(IPVSError, LookupError):
    errno = E.ESRCH


class DestExists(IPVSError):
    errno = E.EEXIST


class NoSuchDest(IPVSError, LookupError):
    errno = E.ENOENT


class NotFound(IPVSError, LookupError):
    """A scheduler, persistence engine or other named kernel object is missing."""

    errno = E.ENOENT


class DaemonRunning(IPVSError):
    errno = E.EEXIST


class NoDaemon(IPVSError):
    errno = E.ESRCH


class Unsupported(IPVSError):
    """The running kernel module lacks a feature (a module without FULLNAT)."""

    errno = E.EOPNOTSUPP


class KernelRefused(IPVSError):
    """Any other refusal; the message names the operation and the errno."""


NOT_LOADED = "IPVS is not loaded: run modprobe ip_vs or use --load"
NEED_ADMIN = "permission denied: needs CAP_NET_ADMIN"


def describe_errno(err: int) -> str:
    """``EINVAL (Invalid argument)``."""
    name = E.errorcode.get(err, str(err))
    return f"{name} ({os.strerror(err)})"
