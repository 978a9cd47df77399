"""What the TOA installer reads before it changes anything: the kernel's
headers, the build tools, and whether the kernel refuses unsigned modules
(lockdown, ``module.sig_enforce``, Secure Boot), with the operator's way
out.  Every reader takes ``root`` (default ``/``) for fake trees.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path
from typing import Callable

from lvs_tools.toa_base import InstallerError, checkout, dpkg_version, kernel_line, read_file


SUPPORTED_LINES = ("6.1", "6.12")
DKMS_KEY, DKMS_CERT = "/var/lib/dkms/mok.key", "/var/lib/dkms/mok.pub"
EFI_SECUREBOOT = ("sys/firmware/efi/efivars/"
                  "SecureBoot-8be4df61-93ca-11d2-aa0d-e39ba7e1d4d7")
# modprobe's words for a signature the kernel did not accept.


Which = Callable[[str], "str | None"]
VersionOf = Callable[[str], "str | None"]


def headers_package(kver: str, image_version: str | None) -> str:
    """The apt command that installs the headers of ``kver`` (at the image's version)."""
    with checkout() as (_, kbuild):
        return kbuild.apt_hint(f"linux-headers-{kver}", image_version)


def check_headers(kver: str, root: Path = Path("/"),
                  version_of: VersionOf = dpkg_version) -> Path:
    """The headers folder of ``kver``; InstallerError naming the package if absent."""
    build = root / "lib/modules" / kver / "build"
    if (build / "Makefile").exists():
        return build
    image = version_of(f"linux-image-{kver}") or version_of(f"linux-image-{kver}-unsigned")
    if not (root / "lib/modules" / kver).is_dir() and image is None:
        raise InstallerError(f"kernel {kver} is not installed here "
                             f"(no {root / 'lib/modules' / kver})")
    raise InstallerError(
        f"the headers of kernel {kver} are missing ({build} has no Makefile); "
        f"install them with: {headers_package(kver, image)}")


def check_tools(which: Which = shutil.which) -> list[str]:
    """Missing build tools, each with the package that brings it."""
    wanted = {"dkms": "dkms", "make": "make", "gcc": "gcc", "modprobe": "kmod",
              "ip": "iproute2"}
    return [f"{tool} is missing: apt-get install {package}"
            for tool, package in wanted.items() if which(tool) is None]


@dataclasses.dataclass
class SigningPolicy:
    """Does the running kernel refuse modules without a trusted signature?"""

    enforced: bool
    reasons: list[str]


def signing_policy(root: Path = Path("/")) -> SigningPolicy:
    """Read lockdown, sig_enforce, the command line and the EFI Secure Boot flag."""
    reasons = []
    lockdown = read_file(root / "sys/kernel/security/lockdown")
    mode = re.search(r"\[(\w+)\]", lockdown or "")
    if mode and mode.group(1) != "none":
        reasons.append(f"kernel lockdown is '{mode.group(1)}'")
    if (read_file(root / "sys/module/module/parameters/sig_enforce") or "").strip() == "Y":
        reasons.append("module.sig_enforce is on")
    cmdline = read_file(root / "proc/cmdline") or ""
    if re.search(r"(^|\s)module\.sig_enforce=(1|y|Y)\b", cmdline) and \
            "module.sig_enforce is on" not in reasons:
        reasons.append("module.sig_enforce=1 on the kernel command line")
    if secure_boot(root):
        reasons.append("UEFI Secure Boot is enabled")
    # Secure Boot alone does not refuse modules unless it turned lockdown on;
    # the kernel's own answer (lockdown, sig_enforce) decides.
    enforced = any(not r.startswith("UEFI") for r in reasons)
    return SigningPolicy(enforced, reasons)


def secure_boot(root: Path = Path("/")) -> bool:
    """The EFI SecureBoot variable: 4 bytes of attributes, then 1 when on."""
    try:
        data = (root / EFI_SECUREBOOT).read_bytes()
    except OSError:
        return False
    return len(data) >= 5 and data[4] == 1


def signing_advice(kver: str, signer: str | None) -> str:
    """What an operator can do when the kernel refuses our module."""
    line = kernel_line(kver)
    signed = (f"toa.ko is signed by '{signer}', a key this kernel does not trust yet."
              if signer else "toa.ko is not signed.")
    return (
        f"This kernel only loads modules signed by a key it trusts, and {signed}\n"
        f"What to do (docs/toa.md, 'Secure Boot'):\n"
        f"  1. Enroll the key DKMS signs with as a Machine Owner Key (once per machine):\n"
        f"       mokutil --import {DKMS_CERT}      # asks for a one-time password\n"
        f"     reboot; in MokManager choose 'Enroll MOK', 'Continue', 'Yes', the password.\n"
        f"  2. Or sign with your own MOK key: set mok_signing_key= and mok_certificate=\n"
        f"     in /etc/dkms/framework.conf and run the install again, or by hand:\n"
        f"       /usr/lib/linux-kbuild-{line}/scripts/sign-file sha256 MOK.priv MOK.der \\\n"
        f"         $(modinfo -k {kver} -n toa)\n"
        f"  3. Then: PYTHONPATH=tools python3 -m lvs_tools.toa_installer install\n"
        f"     (or modprobe toa).")
