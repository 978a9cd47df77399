"""First-run setup behind ``./inv``: Debian packages, kernels, and the venv.

Standard library only (it runs before the virtual environment exists).

It reads the machine first (what dpkg says is installed), plans the apt
installs that are missing, and only then touches apt: on a machine that
already has everything, a run calls nothing but dpkg-query and pip, and
changes nothing.  Any number of checkouts on one machine share the same
system packages; each has its own ``.venv``.

Kernel lines:
  6.1   Debian 12's own kernel, found by the installed
        ``linux-image-6.1.0-N-amd64`` packages (the newest ABI N), never
        through the ``linux-image-amd64`` metapackage, which an apt run
        with ``-t bookworm-backports`` can move to another line.  On a
        machine without one, Debian 12's metapackages are installed at
        their newest Debian 12 version, which brings the image.
  6.12  bookworm-backports: an installed 6.12 image whose headers and
        source are there at its version, or else the image the backports
        ``linux-image-amd64`` points at.

Every package is installed by exact name and version (``name=version``),
never with ``-t bookworm-backports``: that option raises every backports
version to the target release's priority for the whole run, and apt then
upgrades installed packages it touches (seen: Debian 12's
``linux-image-amd64``, ``linux-headers-amd64``, ``linux-libc-dev`` and
``linux-perf`` moved to the backports line, so ``apt-get upgrade`` stopped
bringing the operator 6.1 updates).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
TOOLS_PTH = "lvs_toolkit_tools.pth"   # in the venv's site-packages: the path of lvs_tools
BACKPORTS = "bookworm-backports"
BACKPORTS_SOURCE = Path("/etc/apt/sources.list.d/lvs-toolkit-bookworm-backports.sources")
BACKPORTS_TEXT = f"""\
# Added by lvs-toolkit's ./inv: the 6.12 kernel line comes from here.
Types: deb
URIs: http://deb.debian.org/debian
Suites: {BACKPORTS}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
TOOLS = (
    # building modules
    "build-essential", "bc", "bison", "flex", "libelf-dev", "libssl-dev", "kmod",
    "dkms", "xz-utils", "patch",
    # build roots of other Debian releases for their kernels (tools/buildroot.py)
    "mmdebstrap",
    # booting guests and what runs inside them
    "qemu-system-x86", "busybox-static", "ipvsadm", "keepalived", "socat",
    "iproute2", "ethtool", "tcpdump", "netcat-openbsd", "iputils-ping", "procps",
    # client allow/deny lists: ipvsadm_py.nft runs `nft -j` (libnftables' JSON);
    # the python3-nftables binding is not used (the venv cannot see it)
    "nftables",
    # the virtual environment
    "python3-venv",
    # a Prometheus server and promtool for the exporter's tests (docs/monitoring)
    "prometheus",
    # keepalived from Debian's source (tools/keepalived_build.py): the build
    # dependencies of Debian's keepalived 1:2.2.7-1, and openssl for the tests
    "autoconf", "automake", "pkg-config", "dpkg-dev", "libglib2.0-dev", "libip4tc-dev",
    "libipset-dev", "libjson-c-dev", "libnfnetlink-dev", "libnftnl-dev", "libmnl-dev",
    "libnl-3-dev", "libnl-genl-3-dev", "libnl-nf-3-dev", "libpcre2-dev", "libpopt-dev",
    "libsnmp-dev", "libsystemd-dev", "openssl",
    # the cluster's routing daemon (lvs-cluster, tests/kernel/test_cluster.py)
    "bird2",
    # TOA without a module (kernel/toa_bpf): clang builds the BPF object with
    # libbpf-dev's helper headers, bpftool loads, pins and attaches it
    "clang", "libbpf-dev", "bpftool",
    # the benchmark's user-space peer: HAProxy in TCP mode (docs/benchmarks.md,
    # tools/bench/haproxy_peer.py)
    "haproxy",
)
# Services those packages enable that must not run on this machine: the
# guests start their own daemons in their namespaces (docs/cluster.md,
# docs/benchmarks.md).
SILENT_UNITS = ("bird.service", "haproxy.service")
# dpkg-query patterns of every package the kernel plan looks at
KERNEL_PATTERNS = ("linux-image-*", "linux-headers-*", "linux-source-*")

IMAGE_61 = re.compile(r"linux-image-6\.1\.0-(\d+)-amd64$")
IMAGE_612 = re.compile(r"linux-image-(6\.12\.\d+)\+deb12-amd64$")


def say(msg: str) -> None:
    print(f"[bootstrap] {msg}", flush=True)


Run = Callable[[Sequence[str]], "tuple[int, str]"]


def run_capture(cmd: Sequence[str]) -> tuple[int, str]:
    """Run ``cmd``; its exit status and standard output (stderr dropped)."""
    res = subprocess.run(list(cmd), text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    return res.returncode, res.stdout


def sh(cmd: Sequence[str], *, capture: bool = True) -> str:
    res = subprocess.run(list(cmd), text=True, capture_output=capture)
    if res.returncode != 0:
        detail = (res.stdout or "") + (res.stderr or "") if capture else ""
        raise SystemExit(f"[bootstrap] {' '.join(cmd)} failed ({res.returncode})\n{detail}")
    return res.stdout if capture else ""


def as_root(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return cmd
    if shutil.which("sudo"):
        return ["sudo", *cmd]
    raise SystemExit(f"[bootstrap] needs root to run: {' '.join(cmd)}")


# ------------------------------------------------------------ apt output parsing

def parse_installed(text: str) -> dict[str, str]:
    """``dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Version}\\n'``:
    name -> version of the packages that are installed ("ii")."""
    found = {}
    for line in text.splitlines():
        status, _, rest = line.partition("|")
        name, _, version = rest.partition("|")
        if status.strip() == "ii" and name and version:
            found[name.split(":")[0]] = version
    return found


def madison(text: str) -> list[tuple[str, str]]:
    """``apt-cache madison PKG``: (version, suite) pairs, newest first."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3:
            suite = parts[2].split()[1].split("/")[0] if len(parts[2].split()) > 1 else ""
            found.append((parts[1], suite))
    return found


def depends_on(show_text: str, prefix: str) -> str | None:
    """The first dependency named ``prefix...`` in `apt-cache show` output."""
    for line in show_text.splitlines():
        if line.startswith("Depends:"):
            for dep in line.split(":", 1)[1].split(","):
                name = dep.strip().split()[0]
                if name.startswith(prefix):
                    return name
    return None


def newest_abi(installed: dict[str, str], pattern: re.Pattern[str]) -> str | None:
    """The installed image matching ``pattern`` with the highest ABI/release."""
    def key(name: str) -> tuple[int, ...]:
        match = pattern.match(name)
        assert match
        return tuple(int(part) for part in match.group(1).split("."))
    images = [name for name in installed if pattern.match(name)]
    return max(images, key=key) if images else None


# ------------------------------------------------------------ reading the machine

@dataclasses.dataclass
class Apt:
    """What dpkg and apt say; ``run`` is swapped for recorded outputs in tests."""

    run: Run = run_capture

    def installed(self, patterns: Iterable[str]) -> dict[str, str]:
        _, out = self.run(["dpkg-query", "-W",
                           "-f=${db:Status-Abbrev}|${Package}|${Version}\n", *patterns])
        return parse_installed(out)

    def madison(self, package: str) -> list[tuple[str, str]]:
        _, out = self.run(["apt-cache", "madison", package])
        return madison(out)

    def depends(self, package: str, version: str, prefix: str) -> str | None:
        status, out = self.run(["apt-cache", "show", f"{package}={version}"])
        return depends_on(out, prefix) if status == 0 else None


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One kernel line's packages, each at the image's exact version."""

    line: str
    image: str
    headers: str
    version: str

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.image, self.headers, f"linux-source-{self.line}")

    def missing(self, installed: dict[str, str]) -> list[str]:
        """``name=version`` of each package not installed at the image's version."""
        return [f"{name}={self.version}" for name in self.packages
                if installed.get(name) != self.version]


def headers_of(image: str) -> str:
    return image.replace("linux-image-", "linux-headers-", 1)


def installed_kernel(installed: dict[str, str], line: str,
                     pattern: re.Pattern[str]) -> Kernel | None:
    """The newest installed image of ``line``, with its packages' names."""
    image = newest_abi(installed, pattern)
    if image is None:
        return None
    return Kernel(line, image, headers_of(image), installed[image])


def archive_kernel(apt: Apt, line: str, choose: Callable[[str, str], bool]) -> Kernel | None:
    """The kernel that the archive's ``linux-image-amd64`` of the newest
    version ``choose(version, suite)`` accepts depends on."""
    for version, suite in apt.madison("linux-image-amd64"):
        if choose(version, suite):
            image = apt.depends("linux-image-amd64", version, f"linux-image-{line}")
            if image:
                return Kernel(line, image, headers_of(image), version)
    return None


def is_debian12(version: str, suite: str) -> bool:
    """Debian 12's own 6.1 (bookworm, -updates or -security; any suite name)."""
    return version.startswith("6.1.") and "bpo" not in version


def is_backports(version: str, suite: str) -> bool:
    return suite == BACKPORTS


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to install; empty lists when the machine already has everything."""

    tools: list[str]
    kernels: list[list[str]]    # one apt-get install per kernel line
    notes: list[str]


def plan_kernels(apt: Apt, installed: dict[str, str]) -> tuple[list[list[str]], list[str]]:
    """``name=version`` lists to install, per kernel line, and notes for the user."""
    installs, notes = [], []
    # 6.1: the installed image wins; else Debian 12's metapackages bring one.
    k61 = installed_kernel(installed, "6.1", IMAGE_61)
    if k61 is None:
        k61 = archive_kernel(apt, "6.1", is_debian12)
        if k61 is None:
            raise SystemExit("[bootstrap] apt knows no Debian 12 linux-image-amd64 "
                             "(is bookworm in the apt sources?)")
        installs.append([f"linux-image-amd64={k61.version}",
                         f"linux-headers-amd64={k61.version}", *k61.missing(installed)])
    else:
        installs.append(k61.missing(installed))
    # 6.12: an installed image with everything at its version, else the archive's.
    k612 = installed_kernel(installed, "6.12", IMAGE_612)
    if k612 is None or k612.missing(installed):
        newest = archive_kernel(apt, "6.12", is_backports)
        if newest is not None:
            k612 = newest
        elif k612 is None:
            notes.append(f"warning: {BACKPORTS} has no 6.12 kernel; only the 6.1 "
                         "line will be built")
    installs.append(k612.missing(installed) if k612 else [])
    meta = installed.get("linux-image-amd64", "")
    own = archive_kernel(apt, "6.1", is_debian12) if "bpo" in meta else None
    if own is not None:
        notes.append(
            f"note: linux-image-amd64 is at the backports version {meta} (an older "
            "./inv installed the 6.12 line with -t bookworm-backports); `apt-get "
            f"install linux-image-amd64={own.version} linux-headers-amd64={own.version}` "
            "puts Debian 12's metapackages back, so that upgrades bring 6.1 again")
    return [step for step in installs if step], notes


def ready(installed: dict[str, str]) -> bool:
    """Both lines complete already: nothing for apt to do."""
    return all(kernel is not None and not kernel.missing(installed)
               for kernel in (installed_kernel(installed, "6.1", IMAGE_61),
                              installed_kernel(installed, "6.12", IMAGE_612)))


# ------------------------------------------------------------ steps

def ensure_backports() -> bool:
    """Add the bookworm-backports apt source unless one exists; True if added."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        try:
            if re.search(rf"^\s*(Suites:.*\s|deb\s.*\s){BACKPORTS}(\s|$)",
                         path.read_text(), re.M):
                return False
        except OSError:
            continue
    say(f"adding the {BACKPORTS} apt source ({BACKPORTS_SOURCE})")
    tmp = ROOT / ".backports.sources"
    tmp.write_text(BACKPORTS_TEXT)
    sh(as_root(["install", "-m", "644", str(tmp), str(BACKPORTS_SOURCE)]))
    tmp.unlink()
    return True


def apt_install(packages: Sequence[str]) -> None:
    if not packages:
        return
    say(f"apt-get install {' '.join(packages)}")
    sh(as_root(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                "--no-install-recommends", *packages]), capture=False)


def silence_units(run: Run = run_capture,
                  act: Callable[[list[str]], object] = lambda cmd: sh(as_root(cmd)),
                  systemd_runs: bool | None = None) -> list[str]:
    """Disable the units of SILENT_UNITS that a package enabled, and stop
    them where systemd runs; the commands carried out."""
    if shutil.which("systemctl") is None:
        return []
    if systemd_runs is None:
        systemd_runs = Path("/run/systemd/system").is_dir()
    done = []
    for unit in SILENT_UNITS:
        _, state = run(["systemctl", "is-enabled", unit])
        if state.strip() in ("enabled", "enabled-runtime"):
            done.append(["systemctl", "disable", unit])
        if systemd_runs and run(["systemctl", "is-active", unit])[1].strip() == "active":
            done.append(["systemctl", "stop", unit])
    for cmd in done:
        say(" ".join(cmd))
        act(cmd)
    return done


def read_plan(apt: Apt) -> Plan:
    installed = apt.installed([*TOOLS, *KERNEL_PATTERNS])
    tools = [name for name in TOOLS if name not in installed]
    kernels, notes = plan_kernels(apt, installed)
    return Plan(tools, kernels, notes)


def ensure_system(apt: Apt = Apt()) -> None:
    installed = apt.installed([*TOOLS, *KERNEL_PATTERNS])
    if all(name in installed for name in TOOLS) and ready(installed):
        plan = read_plan(apt)           # only for its notes: nothing to install
    else:
        ensure_backports()
        say("apt-get update")
        sh(as_root(["apt-get", "update"]), capture=False)
        plan = read_plan(apt)
    for note in plan.notes:
        say(note)
    apt_install(plan.tools)
    for step in plan.kernels:
        apt_install(step)
    silence_units()


def ensure_venv() -> None:
    python = VENV / "bin" / "python"
    if not python.exists():
        say(f"creating the virtual environment {VENV}")
        sh(["/usr/bin/python3", "-m", "venv", str(VENV)])
    say("installing the pinned Python packages (requirements.lock)")
    sh([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "-r", str(ROOT / "requirements.lock")], capture=False)
    # "compat" editable mode: a .pth line with the checkout's path instead of
    # an import hook, which every Python start (each ipvsadm-py call) would
    # otherwise import, with pathlib and importlib.util behind it
    sh([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--no-build-isolation", "--config-settings", "editable_mode=compat",
        "-e", str(ROOT)], capture=False)
    # That line names the checkout; lvs_tools lives in tools/lvs_tools
    # (pyproject's packages.find), so a second .pth names tools/ for it
    # (lvs-tune, the guest, tasks.py).
    site = sh([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(site.strip(), TOOLS_PTH).write_text(f"{ROOT / 'tools'}\n")


def main() -> int:
    if not Path("/etc/debian_version").exists():
        say("warning: not a Debian system; skipping the package installation")
    else:
        ensure_system()
    ensure_venv()
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
