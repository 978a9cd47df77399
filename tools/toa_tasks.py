"""``./inv toa.*``: the real-server installer as invoke tasks.

Thin wrappers over tools/lvs_tools/toa_installer.py (which is also a command of its
own, for servers without the project's virtual environment).
"""

from __future__ import annotations

from invoke import Collection, Exit, task

from lvs_tools import toa_installer as toa

KVER_HELP = {"kver": "kernel release (default: the running kernel)"}
MODE_HELP = {"mode": "module (toa.ko, the default), ebpf (the BPF variant) or auto "
                     "(ebpf where unsigned modules are refused or toa.ko cannot be built)",
             "cgroup": "ebpf: the cgroup v2 directory whose processes get TOA (default: all)",
             "object": "ebpf: the BPF object (default: build/bpf/toa.bpf.o, else compiled)"}


def _mode_args(mode: str | None, cgroup: str | None, obj: str | None) -> list[str]:
    return ((["--mode", mode] if mode else []) + (["--cgroup", cgroup] if cgroup else [])
            + (["--object", obj] if obj else []))


def _call(action: str, *extra: str, kver: str | None = None) -> None:
    args = [action, *extra] + (["--kver", kver] if kver else [])
    try:
        rc = toa.main(args)
    except toa.InstallerError as exc:
        raise Exit(f"error: {exc}", code=1)
    if rc:
        raise Exit(code=rc)


@task(help={**KVER_HELP, **MODE_HELP})
def check(c, kver=None, mode=None, cgroup=None, object=None):
    """Check what the chosen variant needs (headers, tools, signing policy; or
    bpftool, cgroup v2, the kernel's BPF features); change nothing."""
    _call("check", *_mode_args(mode, cgroup, object), kver=kver)


@task(help={**KVER_HELP, **MODE_HELP, "no_selftest": "skip the self-test after loading",
            "trusted": "believe TOA only from these prefixes of the balancers' local "
                       "addresses (PREFIX,...; '' for any peer), kept across reboots"})
def install(c, kver=None, no_selftest=False, trusted=None, mode=None, cgroup=None,
            object=None):
    """Build toa.ko with DKMS, load it, load it at boot, and self-test it (or,
    --mode ebpf, load, pin and attach the BPF variant, at boot too)."""
    extra = (["--no-selftest"] if no_selftest else []) + \
        (["--trusted", trusted] if trusted is not None else []) + \
        _mode_args(mode, cgroup, object)
    _call("install", *extra, kver=kver)


@task(help=KVER_HELP)
def status(c, kver=None):
    """Show what is installed, loaded, persisted, signed and counted."""
    _call("status", kver=kver)


@task
def stats(c):
    """Print the counters of the active variant (toa.ko or the BPF variant)."""
    _call("stats")


@task
def selftest(c):
    """Prove in a private network namespace that clients behind TOA are seen."""
    _call("selftest")


@task(help=KVER_HELP)
def uninstall(c, kver=None):
    """Remove either variant: toa.ko (unload, boot, DKMS) or the BPF one (detach,
    unpin, unit)."""
    _call("uninstall", kver=kver)


ns = Collection("toa", check, install, status, stats, selftest, uninstall)
