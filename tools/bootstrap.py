"""First-run setup behind ``./inv``: Debian packages, kernels, and the venv.

Standard library only (it runs before the virtual environment exists).
Installs only what is missing, so a second run changes nothing; ``./inv``
skips it altogether while the dependency lists are unchanged.

Kernel lines:
  6.1   Debian 12's own: linux-image-amd64 / linux-headers-amd64, and
        linux-source-6.1 at exactly the installed image's version.
  6.12  bookworm-backports: the image and headers the backports
        linux-image-amd64 points at, and linux-source-6.12 at that version
        (bookworm-security carries newer 6.12 sources that match no image).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
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
    # booting guests and what runs inside them
    "qemu-system-x86", "busybox-static", "ipvsadm", "keepalived", "socat",
    "iproute2", "ethtool", "tcpdump", "netcat-openbsd", "iputils-ping", "procps",
    # the virtual environment
    "python3-venv",
)


def say(msg: str) -> None:
    print(f"[bootstrap] {msg}", flush=True)


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


def installed(package: str) -> bool:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                         capture_output=True, text=True)
    return res.returncode == 0 and res.stdout.startswith("install ok installed")


def installed_version(package: str) -> str | None:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", package],
                         capture_output=True, text=True)
    if res.returncode or not res.stdout.startswith("install ok installed"):
        return None
    return res.stdout.split()[-1]


# ------------------------------------------------------------ apt output parsing

def madison_versions(text: str, suite: str) -> list[str]:
    """Versions `apt-cache madison` lists for one suite (newest first)."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and re.search(rf"\s{re.escape(suite)}/", " " + parts[2]):
            found.append(parts[1])
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


# ------------------------------------------------------------ steps

def ensure_backports() -> bool:
    """Add the bookworm-backports apt source unless one exists; True if added."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        try:
            if BACKPORTS in path.read_text():
                return False
        except OSError:
            continue
    say(f"adding the {BACKPORTS} apt source ({BACKPORTS_SOURCE})")
    tmp = ROOT / ".backports.sources"
    tmp.write_text(BACKPORTS_TEXT)
    sh(as_root(["install", "-m", "644", str(tmp), str(BACKPORTS_SOURCE)]))
    tmp.unlink()
    return True


def apt_install(packages: Sequence[str], release: str | None = None) -> None:
    if not packages:
        return
    say(f"apt-get install {' '.join(packages)}" + (f" (from {release})" if release else ""))
    cmd = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
           "--no-install-recommends"]
    if release:
        cmd += ["-t", release]
    sh(as_root(cmd + list(packages)), capture=False)


def backports_kernel() -> tuple[str, str, str] | None:
    """(image, headers, version) the backports linux-image-amd64 points at."""
    versions = madison_versions(sh(["apt-cache", "madison", "linux-image-amd64"]), BACKPORTS)
    if not versions:
        return None
    version = versions[0]
    image = depends_on(sh(["apt-cache", "show", f"linux-image-amd64={version}"]),
                       "linux-image-")
    headers = depends_on(sh(["apt-cache", "show", f"linux-headers-amd64={version}"]),
                         "linux-headers-")
    return (image, headers, version) if image and headers else None


def ensure_system() -> None:
    added = ensure_backports()
    missing = [p for p in TOOLS if not installed(p)]
    if added or missing or not installed("linux-image-amd64"):
        say("apt-get update")
        sh(as_root(["apt-get", "update"]), capture=False)
    apt_install(missing)
    # 6.1: Debian 12's own kernel and its exact source.
    apt_install([p for p in ("linux-image-amd64", "linux-headers-amd64") if not installed(p)])
    meta = sh(["dpkg-query", "-W", "-f=Depends: ${Depends}\n", "linux-image-amd64"])
    image61 = depends_on(meta, "linux-image-6.1")
    version61 = installed_version(image61) if image61 else None
    if version61 and installed_version("linux-source-6.1") != version61:
        apt_install([f"linux-source-6.1={version61}"])
    # 6.12: from bookworm-backports.
    bpo = backports_kernel()
    if bpo is None:
        say(f"warning: {BACKPORTS} has no 6.12 kernel; only the 6.1 line will be built")
        return
    image, headers, version = bpo
    apt_install([p for p in (image, headers) if not installed(p)], BACKPORTS)
    if installed_version("linux-source-6.12") != version:
        apt_install([f"linux-source-6.12={version}"], BACKPORTS)


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
