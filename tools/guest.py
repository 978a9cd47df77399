"""Boot a Debian kernel in QEMU with the host's files and our modules.

The host's kernel cannot load modules, so every kernel test runs in a guest
started by virtme-ng: the guest shares the host's root file system
read-only, sees ``/lib/modules/KVER`` through a writable overlay (so our
modules can be installed there exactly as ``./inv install`` would), and runs
one command.  Its exit status is the command's.

Host side (this module)::

    prepare_modroot()  depmod of stock + our modules, done on the host, where
                       it takes seconds (inside the emulated guest: ~80 s)
    run()              boot, install and load modules, run, return the status

Guest side: ``tools/guest_init.py``.
"""

from __future__ import annotations

import atexit
import compileall
import dataclasses
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

from tools import buildroot, kbuild
from tools.kbuild import ROOT, BuildError

MODROOT_FILES = ("modules.order", "modules.builtin", "modules.builtin.modinfo")
UPDATES_SUBDIR = "updates/lvs-toolkit"
#: QEMU's TCG threading modes (GuestConfig.tcg_thread)
TCG_THREADS = ("single", "multi")


class GuestError(BuildError):
    """The guest cannot be started; the message says what is missing."""


@dataclasses.dataclass
class GuestConfig:
    kver: str
    cpus: int = 2
    memory: str = "2G"
    append: Sequence[str] = ()        # extra kernel command line words
    qemu_opts: Sequence[str] = ()     # extra QEMU arguments
    rwdirs: Sequence[Path] = ()       # host folders the guest may write
    timeout: float = 3600.0
    # kernel messages of level warning and above on the console (and so in
    # the console log): an oops that takes the guest down is not lost
    kernel_messages: bool = True
    # QEMU's TCG threading: "single" (both vCPUs take turns on one host
    # thread; every guest by default, see vng_command) or "multi" (one host
    # thread per vCPU).  "multi" only for guests that load our modules once
    # and never reload toa.ko: the benchmark guest (./inv bench --mttcg);
    # the test guests stay single-threaded.
    tcg_thread: str = "single"

    def __post_init__(self) -> None:
        if self.tcg_thread not in TCG_THREADS:
            raise ValueError(f"tcg_thread must be one of {', '.join(TCG_THREADS)}, "
                             f"not {self.tcg_thread!r}")

    @property
    def local(self) -> kbuild.LocalKernel | None:
        """The kernel built in this checkout (the debug kernel), if it is one."""
        return kbuild.local_kernel(self.kver)

    @property
    def vmlinuz(self) -> Path:
        image = self.local.image() if self.local else None
        if image is None and buildroot.release_for(self.kver) is not None:
            # another release's kernel, unpacked next to its modules
            image = buildroot.image_path(self.kver)
        return image or Path("/boot") / f"vmlinuz-{self.kver}"

    @property
    def modules_root(self) -> Path:
        """Where the kernel's own modules and indexes are (/lib/modules)."""
        return self.local.modules_root if self.local else Path("/lib/modules")

    @property
    def build_dir(self) -> Path:
        return ROOT / "build" / self.kver


def check_host(cfg: GuestConfig) -> None:
    """Fail early, naming the package, when something the guest needs is absent."""
    if not cfg.vmlinuz.exists():
        hint = (f"./inv {cfg.local.name}-kernel" if cfg.local
                else f"./inv kernels --kver {cfg.kver}"
                if buildroot.release_for(cfg.kver) is not None
                else f"apt-get install linux-image-{cfg.kver}")
        raise GuestError(f"{cfg.vmlinuz} is missing: {hint}")
    for tool, package in (("qemu-system-x86_64", "qemu-system-x86"),
                          ("busybox", "busybox-static")):
        if shutil.which(tool) is None and not Path(f"/bin/{tool}").exists():
            raise GuestError(f"{tool} is missing: apt-get install {package}")
    if vng_binary() is None:
        raise GuestError("virtme-ng (vng) is missing from the virtual environment: run ./inv")


def vng_binary() -> str | None:
    local = Path(sys.executable).parent / "vng"
    return str(local) if local.exists() else shutil.which("vng")


def prepare_modroot(kver: str, modules: Path, base: Path,
                    modules_root: Path = Path("/lib/modules")) -> Path:
    """A depmod'ed copy of ``/lib/modules/KVER`` metadata with our modules.

    ``base/lib/modules/KVER`` gets a symlink to the stock ``kernel/`` tree
    (and to ``build``/``source`` where the stock folder has them), our
    ``.ko`` files under ``updates/lvs-toolkit/`` and the ``modules.*``
    indexes depmod writes for both.  The guest copies the indexes and our
    modules into its overlay of ``/lib/modules/KVER``, and the links where
    that folder lacks them (a kernel built here has no folder on the host).
    """
    stock = modules_root / kver
    target = base / "lib/modules" / kver
    if base.exists():
        shutil.rmtree(base)
    (target / UPDATES_SUBDIR).mkdir(parents=True)
    (target / "kernel").symlink_to(stock / "kernel")
    for link in ("build", "source"):
        if (stock / link).exists():
            (target / link).symlink_to((stock / link).resolve())
    for name in MODROOT_FILES:
        if (stock / name).exists():
            shutil.copy2(stock / name, target / name)
    kos = sorted(modules.glob("*.ko"))
    if not kos:
        raise GuestError(f"no modules in {modules}: run ./inv build --kver {kver}")
    for ko in kos:
        shutil.copy2(ko, target / UPDATES_SUBDIR / ko.name)
    res = subprocess.run(["depmod", "-b", str(base), kver], capture_output=True, text=True)
    if res.returncode != 0:
        raise GuestError(f"depmod failed for {kver}: {res.stderr.strip()}")
    return target


#: Console lines after which the kernel runs nothing more: the guest is
#: ended then instead of at its timeout (an early panic halts the vCPU and
#: QEMU waits; a suite guest's timeout is 80 minutes)
PANIC_MARKS = ("Kernel panic - not syncing", "PANIC: early exception")
#: A kernel line of one of PANIC_MARKS (its timestamp, if any, then the mark):
#: a test printing the words is not a panic
PANIC_LINE = re.compile(r"^(\[\s*\d+\.\d+\] )?(" + "|".join(map(re.escape, PANIC_MARKS)) + ")")
#: ``run``'s status for a guest ended after a kernel panic
PANIC_STATUS = 123
#: How long the console may go on after a panic (its trace) before the end
PANIC_GRACE = 5.0


def _pump(stream, log, quiet: bool, panicked: threading.Event | None = None) -> None:
    """Copy the guest's console to stdout and to the console log; set
    ``panicked`` at a line of PANIC_MARKS."""
    for raw in stream:
        line = raw.decode(errors="replace")
        if panicked is not None and PANIC_LINE.match(line):
            panicked.set()
        if not quiet:
            sys.stdout.write(line)
            sys.stdout.flush()
        if log:
            log.write(line)
            log.flush()


def compile_bytecode() -> None:
    """Byte-compile the project's Python here, as an installed package would
    be: the guest sees this tree read-only, so without it every guest
    process compiles each module it imports again (under emulation, about
    0.7 s of each ipvsadm-py call)."""
    for package in ("ipvsadm_py", "tools", "tests"):
        # quiet=2: a tree we may not write stays silent (only slower)
        compileall.compile_dir(ROOT / package, quiet=2)


#: The guest's root is the host's, over 9p without a cache: every stat and
#: open goes to the host, and a Python process importing pyroute2 spent 12
#: of its 15 s there (2.6 s from a guest-local copy).  A second 9p share of
#: the host's root (a virtio channel serves one mount) is mounted with the
#: guest's page and dentry cache on (cache=loose: nothing there changes
#: while a guest runs), read-only, and the trees Python reads are bound
#: from it over the same paths.
PYTHON_TREES = (Path(f"/usr/lib/python{sys.version_info.major}.{sys.version_info.minor}"),
                ROOT / ".venv", ROOT / "ipvsadm_py", ROOT / "tools", ROOT / "tests")
CACHED_TAG = "lvs-cached-root"
CACHED_ROOT = f"/run/{CACHED_TAG}"
CACHED_SHARE = (f"-fsdev=local,id={CACHED_TAG},path=/,security_model=none,readonly=on,"
                f"multidevs=remap",
                f"-device=virtio-9p-pci,fsdev={CACHED_TAG},mount_tag={CACHED_TAG}")


def cached_python_mounts() -> str:
    """Shell commands for the guest's start that bind the cached copies of
    PYTHON_TREES; a failure leaves the uncached ones (slower, the same)."""
    opts = "ro,trans=virtio,version=9p2000.L,access=any,msize=512000,cache=loose"
    binds = " && ".join(f"mount --bind {CACHED_ROOT}{shlex.quote(str(t))} {shlex.quote(str(t))}"
                        for t in PYTHON_TREES if t.is_dir())
    return (f"{{ mkdir -p {CACHED_ROOT} && mount -t 9p -o {opts} {CACHED_TAG} {CACHED_ROOT} "
            f"&& {binds} || echo 'lvs-guest: Python trees stay uncached' >&2; }}")


def vng_command(cfg: GuestConfig, guest_cmd: str) -> list[str]:
    cmd = [vng_binary() or "vng", "--run", str(cfg.vmlinuz), "--disable-kvm",
           "--force-9p", "--cpus", str(cfg.cpus), "--memory", cfg.memory]
    if Path(f"/lib/modules/{cfg.kver}").is_dir():
        cmd += ["--overlay-rwdir", f"/lib/modules/{cfg.kver}"]
    # else (a kernel built here) the guest makes that folder in its overlay of /lib
    for path in cfg.rwdirs:
        cmd += ["--rwdir", str(path)]
    if cfg.kernel_messages:
        # the boot console to our output; the last loglevel= wins over vng's
        cmd += ["--verbose", "--append", "loglevel=5"]
    for word in cfg.append:
        cmd += ["--append", word]
    # Single-threaded TCG unless the caller asks otherwise: the vCPUs take
    # turns on one host thread.  QEMU 7.2's multi-threaded TCG ran stale
    # kernel text after ftrace patched it (toa.ko reloads): a lockup on an
    # int3 already gone, and a jump to 0 in CI.  README, Tests, has the details.
    cmd += ["--qemu-opt=-accel", f"--qemu-opt=tcg,thread={cfg.tcg_thread}"]
    for opt in CACHED_SHARE:
        flag, value = opt.split("=", 1)
        cmd += [f"--qemu-opt={flag}", f"--qemu-opt={value}"]
    for opt in cfg.qemu_opts:
        # One argument each, attached with "=": vng's --qemu-opts swallows
        # everything after it (--exec too), and "-device" would look like an option.
        cmd.append(f"--qemu-opt={opt}")
    return cmd + ["--exec", guest_cmd]


def _wait(proc: subprocess.Popen, cfg: GuestConfig, started: float,
          panicked: threading.Event) -> int:
    """The guest's status: its own, 124 at cfg.timeout, PANIC_STATUS
    PANIC_GRACE seconds after a kernel panic on its console."""
    deadline = started + cfg.timeout
    while True:
        if panicked.wait(timeout=1.0):
            try:
                return proc.wait(timeout=PANIC_GRACE)
            except subprocess.TimeoutExpired:
                _kill_session(proc)
                print(f"[guest] {cfg.kver}: kernel panic, guest ended", flush=True)
                return PANIC_STATUS
        try:
            return proc.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                _kill_session(proc)
                print(f"[guest] {cfg.kver}: killed after {cfg.timeout:.0f} s", flush=True)
                return 124


_LIVE: set[subprocess.Popen] = set()   # guests running now, ended at exit


def _kill_session(proc: subprocess.Popen) -> None:
    """End vng and everything it started (QEMU included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@atexit.register
def _kill_live_guests() -> None:
    for proc in list(_LIVE):
        _kill_session(proc)


def end_guests_on_sigterm() -> None:
    """A SIGTERM (a CI timeout, ``kill``) ends the live guests too; atexit
    alone does not run then.  Call from the main thread."""
    def handler(signum: int, frame: object) -> None:
        _kill_live_guests()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, handler)


def run(cfg: GuestConfig, command: str, *, load: str = "all", strict_log: bool = False,
        console: Path | None = None, quiet: bool = False) -> int:
    """Boot ``cfg.kver``, install and load our modules, run ``command``.

    ``load`` is ``all`` (every built module), ``none``, or a comma list of
    module names.  Returns the command's exit status; with ``strict_log`` a
    kernel log showing an oops, WARN, BUG or leak turns success into 125.
    ``console`` receives the guest's output too (it is always streamed to
    stdout unless ``quiet``).
    """
    check_host(cfg)
    compile_bytecode()
    # one folder per run (guests of one kernel may boot side by side): the
    # modules' root and the guest's command, both read by the guest over 9p
    cfg.build_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="guest-run-", dir=cfg.build_dir))
    try:
        return _boot(cfg, command, run_dir, load=load, strict_log=strict_log,
                     console=console, quiet=quiet)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def guest_script(run_dir: Path, guest_cmd: str) -> str:
    """Write ``guest_cmd`` to a script in ``run_dir``; return the short
    command that runs it.  vng hands its --exec to the guest on the kernel
    command line, which holds 2048 bytes on x86 (a longer one panics 6.12's
    FORTIFY_SOURCE at boot, and is cut short on older kernels): the script's
    path is all that goes there, however long the command and the
    checkout's path are."""
    script = run_dir / "guest-command.sh"
    script.write_text(f"#!/bin/sh\n{guest_cmd}\n")
    return f"sh {shlex.quote(str(script))}"


def _boot(cfg: GuestConfig, command: str, run_dir: Path, *, load: str, strict_log: bool,
          console: Path | None, quiet: bool) -> int:
    modroot = None
    if load != "none":
        modroot = prepare_modroot(cfg.kver, cfg.build_dir / "modules", run_dir / "modroot",
                                  cfg.modules_root)
    init = [sys.executable, "-m", "tools.guest_init", "--kver", cfg.kver, "--load", load]
    if modroot is not None:
        init += ["--modroot", str(modroot)]
    if strict_log:
        init.append("--strict-log")
    guest_cmd = (f"{cached_python_mounts()}; cd {shlex.quote(str(ROOT))} && "
                 f"{shlex.join(init)} -- {shlex.quote(command)}")
    argv = vng_command(cfg, guest_script(run_dir, guest_cmd))
    if not quiet:
        print(f"[guest] booting {cfg.kver} under QEMU/TCG (about 30 s)", flush=True)
    started = time.monotonic()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    log = console.open("w") if console else None
    # vng starts virtme-run, which starts QEMU: a session of their own, so
    # that a timeout (or an interrupted run) ends the guest and not only vng
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, cwd=ROOT,
                            start_new_session=True)
    _LIVE.add(proc)
    panicked = threading.Event()
    pump = threading.Thread(target=_pump, args=(proc.stdout, log, quiet, panicked),
                            daemon=True)
    pump.start()
    try:
        rc = _wait(proc, cfg, started, panicked)
    except BaseException:
        _kill_session(proc)
        raise
    _LIVE.discard(proc)
    pump.join(timeout=10)
    if log:
        log.close()
    if not quiet:
        print(f"[guest] {cfg.kver}: exit status {rc} after "
              f"{time.monotonic() - started:.0f} s", flush=True)
    return rc
