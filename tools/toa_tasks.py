"""``./inv toa.*``: the real-server installer as invoke tasks.

Thin wrappers over tools/lvs_tools/toa_installer.py (which is also a command of its
own, for servers without the project's virtual environment).
"""

from __future__ import annotations

from invoke import Collection, Exit, task

from lvs_tools import toa_installer as toa

KVER_HELP = {"kver": "kernel release (default: the running kernel)"}


def _call(action: str, *extra: str, kver: str | None = None) -> None:
    args = [action, *extra] + (["--kver", kver] if kver else [])
    try:
        rc = toa.main(args)
    except toa.InstallerError as exc:
        raise Exit(f"error: {exc}", code=1)
    if rc:
        raise Exit(code=rc)


@task(help=KVER_HELP)
def check(c, kver=None):
    """Check kernel, headers, build tools and module signing policy; change nothing."""
    _call("check", kver=kver)


@task(help={**KVER_HELP, "no_selftest": "skip the self-test after loading",
            "trusted": "believe TOA only from these prefixes of the balancers' local "
                       "addresses (PREFIX,...; '' for any peer), kept in modprobe.d"})
def install(c, kver=None, no_selftest=False, trusted=None):
    """Build toa.ko with DKMS, load it, load it at boot, and self-test it."""
    extra = (["--no-selftest"] if no_selftest else []) + \
        (["--trusted", trusted] if trusted is not None else [])
    _call("install", *extra, kver=kver)


@task(help=KVER_HELP)
def status(c, kver=None):
    """Show what is installed, loaded, persisted, signed and counted."""
    _call("status", kver=kver)


@task
def selftest(c):
    """Prove in a private network namespace that clients behind TOA are seen."""
    _call("selftest")


@task(help=KVER_HELP)
def uninstall(c, kver=None):
    """Unload toa.ko, stop loading it at boot, remove it from DKMS."""
    _call("uninstall", kver=kver)


ns = Collection("toa", check, install, status, selftest, uninstall)
