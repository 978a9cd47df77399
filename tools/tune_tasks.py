"""The ``tune`` task collection (``./inv tune.plan`` ...): thin calls of ``lvs-tune``."""

from __future__ import annotations

from invoke import Collection, Exit, task

from lvs_tools.tuning import cli

COMMON_HELP = {
    "profile": "profile YAML file or packaged profile name (default: default)",
    "strategy": "per-cpu, numa-local, explicit or none (overrides the profile)",
    "interface": "tune only this NIC (repeatable)",
    "root": "root of the /proc and /sys tree (default /)",
}


def _run(command: str, profile: str | None, strategy: str | None,
         interface: list[str] | None, root: str, *extra: str) -> None:
    argv = [command, "--root", root]
    if profile:
        argv += ["--profile", profile]
    if strategy:
        argv += ["--strategy", strategy]
    for name in interface or ():
        argv += ["--interface", name]
    code = cli.main([*argv, *extra])
    if code:
        raise Exit(code=code)


@task(help=COMMON_HELP, iterable=["interface"])
def facts(c, profile=None, strategy=None, interface=None, root="/"):
    """Show what the host looks like: CPUs, nodes, NIC queues and IRQs, masks, sysctls."""
    _run("facts", profile, strategy, interface, root)


@task(help=COMMON_HELP, iterable=["interface"])
def plan(c, profile=None, strategy=None, interface=None, root="/"):
    """Show the writes the profile needs, as a table (writes nothing)."""
    _run("plan", profile, strategy, interface, root)


@task(help={**COMMON_HELP, "dry_run": "print the plan, write nothing"}, iterable=["interface"])
def apply(c, profile=None, strategy=None, interface=None, root="/", dry_run=False):
    """Apply the profile (all or nothing); old values go to /run/lvs-toolkit/."""
    _run("apply", profile, strategy, interface, root, *(["--dry-run"] if dry_run else []))


@task(help={"root": COMMON_HELP["root"]})
def revert(c, root="/"):
    """Restore the values saved by the last apply."""
    _run("revert", None, None, None, root)


@task(help=COMMON_HELP, iterable=["interface"])
def audit(c, profile=None, strategy=None, interface=None, root="/"):
    """List every deviation of the host from the profile; fail if there is one."""
    _run("audit", profile, strategy, interface, root)


tune = Collection("tune", facts, plan, apply, revert, audit)
