"""Tasks of the lvs-toolkit project (run them with ./inv; ./inv --list).

Each task is a thin wrapper: the logic lives in tools/ and ipvsadm_py/.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from invoke import Collection, Exit, task

from tools import guest, install as inst, kbuild
from tools.tune_tasks import tune  # host tuning: ./inv tune.plan, tune.apply, ...

DEFAULT_DEMO_KVER_LINE = "6.1"


def _kernels(kver: str | None) -> list[str]:
    """``kver`` (a local kernel's alias, ``debug``, becomes its release), or
    every installed 6.1/6.12 kernel."""
    if kver:
        try:
            return [kbuild.resolve_kver(kver)]
        except kbuild.BuildError as exc:
            raise _fail(exc)
    found = kbuild.installed_kernels()
    if not found:
        raise Exit("no 6.1 or 6.12 kernel with headers is installed: run ./inv "
                   "(it installs them) or apt-get install linux-headers-$(uname -r)")
    return found


def _fail(exc: Exception) -> Exit:
    return Exit(f"error: {exc}", code=1)


KEEPALIVED = "keepalived"   # the --set of our keepalived (tools/keepalived_pkg.py)


def _keepalived(action: str, warn_only: bool = False) -> None:
    """build / install / uninstall our keepalived; ``warn_only``: a failure is
    printed (the tests that need keepalived then say what is missing)."""
    from tools import keepalived_pkg

    try:
        print(keepalived_pkg.TASKS[action]())
    except kbuild.BuildError as exc:
        if not warn_only:
            raise _fail(exc)
        print(f"warning: keepalived: {exc}", file=sys.stderr)


@task(help={"jobs": "parallel make jobs (default: CPU count)",
            "force": "build even if the last build is up to date"})
def debug_kernel(c, jobs=0, force=False):
    """Build the debug kernel (6.12 sources, KASAN, kmemleak, lockdep...) into build/debug-kernel/.

    Configuration: kernel/debug/debug.config on top of allnoconfig.  Cached:
    rebuilt only when the linux-source-6.12 tarball or the fragment changes.
    Use it with --kver debug (build, vm, test).
    """
    from tools import debug_kernel as dk

    try:
        result = dk.build(jobs, force=force)
    except kbuild.BuildError as exc:
        raise _fail(exc)
    print(f"debug kernel {result.release}: {result.image}")


@task(help={"kver": "kernel release, or debug (default: every installed 6.1/6.12 kernel)",
            "set": "ipvs, toa or keepalived (repeatable; default ipvs and toa)",
            "jobs": "parallel make jobs (default: CPU count)",
            "verbose": "show every Kbuild command"},
      iterable=["set"])
def build(c, kver=None, set=None, jobs=0, verbose=False):
    """Stage the kernel's IPVS sources, apply our patches, build into build/KVER/.

    --set keepalived builds keepalived from Debian's source with our patches
    (build/keepalived/, docs/keepalived.md)."""
    sets = list(set or kbuild.MODULE_SETS)
    modules = [name for name in sets if name != KEEPALIVED]
    for k in _kernels(kver) if modules else ():
        try:
            kbuild.build(k, kbuild.ROOT / "build" / k, modules, jobs, verbose)
        except kbuild.BuildError as exc:
            raise _fail(exc)
    if "toa" in modules:
        _build_toa_bpf()
    if KEEPALIVED in sets:
        _keepalived("build")


def _build_toa_bpf() -> None:
    """TOA's BPF variant: one object for every kernel (UAPI headers only),
    build/bpf/toa.bpf.o, which the installer's --mode ebpf takes."""
    from lvs_tools import toa_bpf, toa_bpf_steps

    out = toa_bpf_steps.BUILT_OBJECT
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        toa_bpf.build(out)
    except toa_bpf.InstallerError as exc:
        raise _fail(exc)
    print(f"[bpf] {out}")


@task(help={"kver": "kernel release (default: every installed 6.1/6.12 kernel)",
            "set": "keepalived: install our keepalived package instead of the modules"},
      iterable=["set"])
def install(c, kver=None, set=None):
    """Install the built modules into /lib/modules/KVER/updates/lvs-toolkit and run depmod.

    --set keepalived builds, packages and installs our keepalived as the
    Debian package keepalived (version ...+lvsN)."""
    if KEEPALIVED in (set or ()):
        _keepalived("install")
        if set == [KEEPALIVED]:
            return
    try:
        inst.require_root("install")
        for k in _kernels(kver):
            paths = inst.install(k, kbuild.ROOT / "build" / k / "modules")
            print(f"{k}: {len(paths)} modules installed; modprobe ip_vs now loads "
                  f"{inst.module_path(k, 'ip_vs')}")
    except kbuild.BuildError as exc:
        raise _fail(exc)


@task(help={"kver": "kernel release (default: every installed 6.1/6.12 kernel)",
            "set": "keepalived: reinstall Debian's keepalived instead"},
      iterable=["set"])
def uninstall(c, kver=None, set=None):
    """Remove our modules from /lib/modules/KVER/updates and run depmod (stock IPVS again).

    --set keepalived installs Debian's keepalived package over ours."""
    if KEEPALIVED in (set or ()):
        _keepalived("uninstall")
        if set == [KEEPALIVED]:
            return
    try:
        inst.require_root("uninstall")
        for k in _kernels(kver):
            removed = inst.uninstall(k)
            print(f"{k}: {'removed' if removed else 'nothing installed'}; "
                  f"ip_vs is {inst.module_path(k, 'ip_vs')}")
    except kbuild.BuildError as exc:
        raise _fail(exc)


@task(help={"kver": "kernel release (default: every installed 6.1/6.12 kernel)",
            "set": "module set: ipvs or toa (repeatable; default both)"},
      iterable=["set"])
def dkms_install(c, kver=None, set=None):
    """Register the module sets with DKMS (rebuilt on every kernel upgrade) and install."""
    try:
        for name in set or inst.DKMS_PACKAGES:
            inst.dkms_install(name, _kernels(kver))
            for k in _kernels(kver):
                probe = "ip_vs" if name == "ipvs" else "toa"
                print(f"{k}: {probe} is {inst.module_path(k, probe)}")
    except kbuild.BuildError as exc:
        raise _fail(exc)


@task(help={"set": "module set: ipvs or toa (repeatable; default both)"}, iterable=["set"])
def dkms_remove(c, set=None):
    """Remove the module sets from DKMS (every kernel) and /usr/src."""
    try:
        for name in set or inst.DKMS_PACKAGES:
            print(f"{name}: {'removed' if inst.dkms_remove(name) else 'not registered'}")
    except kbuild.BuildError as exc:
        raise _fail(exc)


@task(help={"kver": "kernel to boot, or debug (default: the first installed 6.1/6.12 kernel)",
            "load": "modules to load: all (default), none, or a comma list",
            "memory": "guest memory (default 2G)", "cpus": "guest CPUs (default 2)",
            "append": "extra kernel command line (repeatable)",
            "strict_log": "exit 125 if the command succeeded but the kernel log "
                          "shows an oops/WARN/BUG/leak",
            "rwdir": "a host folder the guest may write (repeatable; the rest of "
                     "the host is read-only in the guest)"},
      iterable=["append", "rwdir"])
def vm(c, kver=None, load="all", memory="2G", cpus=2, append=None, strict_log=False,
       rwdir=None):
    """Boot a kernel in QEMU with our modules and run the command after `--`.

    Example: ./inv vm --kver 6.1.0-56-amd64 -- "ipvsadm -Ln && cat /proc/net/ip_vs"
    The exit status is the command's.
    """
    command = c.remainder or "true"
    cfg = guest.GuestConfig(_kernels(kver)[0], cpus=cpus, memory=memory, append=append or (),
                            rwdirs=[Path(d).resolve() for d in rwdir or ()])
    try:
        rc = guest.run(cfg, command, load=load, strict_log=strict_log)
    except kbuild.BuildError as exc:
        raise _fail(exc)
    if rc:
        raise Exit(code=rc)


@task(help={"kver": "kernel release of another Debian release (repeatable), e.g. "
                    "6.12.117+deb13-amd64, 7.3.4+deb13-amd64, 5.10.0-46-amd64"},
      iterable=["kver"])
def kernels(c, kver=None):
    """Unpack Debian kernels of other releases for guests, without installing them.

    The image package (with its modules) is downloaded in that release's
    build root and unpacked into /lib/modules/KVER, the image next to the
    modules: dpkg and the boot loader never see it (tools/buildroot.py)."""
    from tools import buildroot
    if not kver:
        raise Exit("name the kernel(s): --kver KVER (for instance 6.12.117+deb13-amd64)")
    try:
        for k in kver:
            print(f"{k}: {buildroot.fetch_image(k)}")
    except kbuild.BuildError as exc:
        raise _fail(exc)


@task(help={"kver": "kernel(s) for kernel tests (repeatable; default: all installed); "
                    "debug: the debug kernel (./inv debug-kernel)",
            "unit": "host tests only: no build, no guest",
            "k": "pytest -k expression", "x": "stop at the first failure",
            "no_build": "do not rebuild the modules (nor the debug kernel) first",
            "tier": "only the kernel tests of a tier (tests/tiers.py): core, the set of a "
                    "secondary kernel line; sanitizer, the set for the debug kernel",
            "secondary": "without --kver: also the core tier on the secondary kernel "
                         "lines (the default; --no-secondary: the primary lines only; "
                         "docs/kernels.md)",
            "installed_only": "without --kver: the host's installed kernels only (6.1 and "
                            "bookworm-backports' 6.12), each with the whole suite"},
      iterable=["kver"])
def test(c, kver=None, unit=False, k=None, x=False, no_build=False, tier=None,
         secondary=True, installed_only=False):
    """The whole test suite: host tests, then kernel tests in one guest per kernel.

    Without --kver: the whole suite on the primary lines (Debian 12's 6.1,
    Debian 13's newest 6.12, built in a trixie build root and unpacked for
    the guest), and the core tier on the secondary lines (bookworm-backports'
    6.12, trixie-backports' newest, bullseye's 5.10; --no-secondary leaves
    them out), whose guests take a slot as soon as one frees.
    """
    args = [sys.executable, "-m", "pytest"]
    if not unit and not no_build and "debug" in (kver or []):
        debug_kernel(c)
    kvers = [release for one in kver or [] for release in _kernels(one)]
    core: list[str] = []
    if not unit and not kvers and not installed_only and not tier:
        from tools import buildroot, lines
        try:
            kvers, core = lines.plan(secondary)
            for one in kvers + core:
                if buildroot.release_for(one) is not None:
                    buildroot.fetch_image(one)
        except kbuild.BuildError as exc:
            raise Exit(f"error: {exc}\n(./inv test --installed-only runs the host's "
                       f"kernels only)", code=1)
        print(f"[test] the whole suite on {', '.join(kvers)}; the core tier on "
              f"{', '.join(core) or 'no other kernel'}")
    if unit:
        args.append("--no-kernel")
    elif not no_build:
        for one in kvers + core or _kernels(None):
            build(c, kver=one)
        _keepalived("build", warn_only=True)   # the keepalived tests run it from build/
    for one in kvers:
        args += ["--kver", one]
    for one in core:
        args += ["--core-kver", one]
    if k:
        args += ["-k", k]
    if tier:
        args += ["--tier", tier]
    if x:
        args.append("-x")
    result = c.run(shlex.join(args), warn=True, pty=False)
    if result.exited:
        raise Exit(code=result.exited)


@task(help={"kver": "kernel to run the demo on (default: the 6.1 line)"})
def demo(c, kver=None):
    """Build, boot a guest, and send a request through a virtual service."""
    kernels = _kernels(kver)
    chosen = next((k for k in kernels if kbuild.kernel_line(k) == DEFAULT_DEMO_KVER_LINE),
                  kernels[0])
    build(c, kver=chosen)
    cfg = guest.GuestConfig(chosen)
    rc = guest.run(cfg, f"{sys.executable} -m tools.demo", strict_log=True)
    if rc:
        raise Exit(code=rc)


@task(help={"kver": "kernel to measure (default: the first installed 6.1/6.12 kernel)",
            "quick": "CI smoke: each measurement once, small counts (no speed claims)",
            "json": "where to write the JSON (default build/bench/KVER/bench.json); "
                    "the chart goes next to it as .png",
            "memory": "guest memory (default 3G: a million sessions and their packets)",
            "no_build": "do not rebuild the modules first",
            "only": "run only the steps whose name contains this word (e.g. exporter); "
                    "the other figures are null",
            "mttcg": "run the guest with QEMU's multi-threaded TCG (one host thread per "
                     "vCPU; the test guests stay single-threaded: README, Tests)",
            "cpus": "the guest's vCPUs (default 2; with 3 or more, CPU 1 does the "
                    "balancer's work only and the others generate: docs/benchmarks.md)"})
def bench(c, kver=None, quick=False, json=None, memory=None, no_build=False, only=None,
          mttcg=False, cpus=2):
    """Benchmarks in one guest: FULLNAT vs NAT, SYNPROXY, memory, control plane.

    Prints a table of ratios against baselines measured in the same run,
    writes JSON and a PNG chart (docs/benchmarks.md).
    """
    from tools.bench import host as bench_mod

    chosen = _kernels(kver)[0]
    if not no_build:
        build(c, kver=chosen)
        _keepalived("build", warn_only=True)   # the keepalived figures need it
    try:
        bench_mod.run(chosen, quick=quick, only=only, json_path=json,
                      memory=memory or bench_mod.BENCH_MEMORY, cpus=int(cpus),
                      tcg_thread="multi" if mttcg else "single")
    except kbuild.BuildError as exc:
        raise _fail(exc)


@task(help={"listen": "ADDR:PORT to serve /metrics on (default 0.0.0.0:9291)",
            "netns": "read the IPVS table of this named network namespace",
            "role": "lb (IPVS, default) or rs (toa.ko on a real server)",
            "keepalived_conf": "keepalived's configuration: the health of its real servers",
            "nice": "CPU priority -20..19 (default 19, the lowest)",
            "once": "print one scrape and exit"})
def exporter(c, listen=None, netns=None, role="lb", once=False, keepalived_conf=None,
             nice=None):
    """Run lvs-exporter here (Prometheus metrics; docs/monitoring/README.md).

    Needs CAP_NET_ADMIN for the IPVS table; the service unit is
    docs/monitoring/lvs-exporter.service.
    """
    from ipvsadm_py.exporter.cli import main as exporter_main

    argv = ["--role", role]
    if listen:
        argv += ["--listen", listen]
    if netns:
        argv += ["--netns", netns]
    if keepalived_conf:
        argv += ["--keepalived-conf", keepalived_conf]
    if nice is not None:
        argv += ["--nice", str(nice)]
    if once:
        argv.append("--once")
    rc = exporter_main(argv)
    if rc:
        raise Exit(code=rc)


ns = Collection(build, install, uninstall, dkms_install, dkms_remove, vm, test, demo, bench,
                debug_kernel, exporter, kernels)
ns.add_collection(tune)

# --- toa: the real-server installer (tools/toa_tasks.py) -------------------
from tools import toa_tasks  # noqa: E402

ns.add_collection(toa_tasks.ns)
