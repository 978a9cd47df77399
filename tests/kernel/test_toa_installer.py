"""The real-server installer, run for real inside the guest.

The guest shares the host's files read-only, so the test first gives the
installer a system it may change, with mounts that vanish afterwards:

  /usr/src              overlay (the headers stay visible, DKMS adds its tree)
  /var/lib/dkms         empty tmpfs (DKMS state, its signing key)
  /etc/modules-load.d   empty tmpfs (what install persists)
  /etc/modprobe.d       empty tmpfs (the trusted option install writes)
  /lib/modules/KVER     a lean copy: indexes of built-in modules and the
                        build/source links, but none of the distribution's
                        module files

The lean module tree is what keeps this cheap: DKMS runs ``depmod -a`` on
install and on remove, which reads every module of the tree - about 80 s
for Debian's 4000 modules under emulation, a fraction of a second here.
Nothing else differs from a real server: real DKMS builds and signs
toa.ko, real depmod and modprobe load it, the real self-test proves it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from lvs_tools import toa_installer
from tools import kbuild
from tools.kbuild import ROOT, project_version

pytestmark = pytest.mark.kernel
TRUSTED = "10.0.3.0/24,2001:db8:3::/64"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(args), capture_output=True, text=True, timeout=1200)
    if check and res.returncode:
        raise AssertionError(f"{args} failed ({res.returncode}):\n{res.stdout}{res.stderr}")
    return res


def installer(*args: str) -> subprocess.CompletedProcess[str]:
    """The command a real server runs, from the project's folder."""
    return subprocess.run([sys.executable, "-m", "lvs_tools.toa_installer", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)


class Mounts:
    def __init__(self) -> None:
        self.done: list[str] = []

    def mount(self, target: str, *args: str) -> None:
        sh("mount", *args, target)
        self.done.append(target)

    def undo(self) -> None:
        for target in reversed(self.done):
            sh("umount", "-l", target, check=False)


def lean_module_tree(kver: str, dest: Path) -> None:
    live = Path("/lib/modules") / kver
    dest.mkdir(parents=True)
    for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if (live / name).exists():
            shutil.copy2(live / name, dest / name)
    (dest / "kernel").mkdir()
    for link in ("build", "source"):
        if (live / link).is_symlink():
            (dest / link).symlink_to(os.readlink(live / link))


@pytest.fixture
def rs_system(kver, tmp_path) -> Iterator[Path]:
    """A writable system as described above; the lean tree's folder."""
    subprocess.run(["modprobe", "tun"], check=True)   # the self-test needs it
    was_loaded = toa_installer.loaded()
    mounts = Mounts()
    try:
        # The guest's /tmp is itself an overlay, which cannot hold an upper dir.
        (tmp_path / "src").mkdir()
        mounts.mount(str(tmp_path / "src"), "-t", "tmpfs", "srcupper")
        for sub in ("upper", "work"):
            (tmp_path / "src" / sub).mkdir()
        mounts.mount("/usr/src", "-t", "overlay", "overlay", "-o",
                     f"lowerdir=/usr/src,upperdir={tmp_path}/src/upper,"
                     f"workdir={tmp_path}/src/work")
        mounts.mount("/var/lib/dkms", "-t", "tmpfs", "dkms")
        mounts.mount("/etc/modules-load.d", "-t", "tmpfs", "modload")
        mounts.mount("/etc/modprobe.d", "-t", "tmpfs", "modprobe")
        lean_module_tree(kver, tmp_path / "modules")
        mounts.mount(f"/lib/modules/{kver}", "--bind", str(tmp_path / "modules"))
        yield tmp_path / "modules"
    finally:
        subprocess.run(["modprobe", "-r", "toa"], capture_output=True)
        mounts.undo()
        if was_loaded:     # the build's toa.ko again, for the tests after us
            subprocess.run(["modprobe", "toa"], check=True)


def test_check_names_the_missing_headers_package(rs_system, kver):
    build = rs_system / "build"
    if build.is_symlink() or build.exists():   # a kernel of another release has none
        build.unlink()
    res = installer("check", "--kver", kver)
    assert res.returncode == 1
    hint = toa_installer.headers_package(kver, kbuild.dpkg_version(f"linux-image-{kver}"))
    assert hint in res.stdout, res.stdout
    assert "-t " not in hint


# DKMS compiles the module inside the guest: under emulation on a busy host
# that alone was seen taking more than the default 900 s.
@pytest.mark.timeout(2400)
def test_install_status_selftest_uninstall(rs_system, kver, kmsg_mark):
    if not (rs_system / "build" / "Makefile").exists():
        pytest.skip(f"the guest has no headers of {kver}: a kernel of another Debian "
                    f"release, whose modules are built in its build root with that "
                    f"release's compiler (docs/kernels.md, DKMS)")
    version = project_version()
    res = installer("check", "--kver", kver)
    assert res.returncode == 0 and "ready to install" in res.stdout, res.stdout + res.stderr

    # A bad --trusted stops the install before anything changes.
    res = installer("install", "--trusted", "10.0.3.1/24")
    assert res.returncode == 1 and "--trusted: '10.0.3.1/24'" in res.stderr, res.stderr
    assert toa_installer.dkms_status(kver) is None
    assert not Path("/etc/modprobe.d/lvs-toa.conf").exists()

    res = installer("install", "--trusted", TRUSTED)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    # Five checks, the balancer inside the trusted prefixes, and one from outside.
    assert "self-test passed" in out and out.count("PASS ") == 6, out
    assert "PASS TOA from an untrusted peer is ignored" in out, out
    assert Path(toa_installer.TRUSTED_PATH).read_text() == TRUSTED + "\n"
    assert toa_installer.persisted_trusted() == TRUSTED
    dkms_file = f"/lib/modules/{kver}/updates/dkms/toa.ko"
    assert Path(dkms_file).exists()
    assert toa_installer.module_file(kver) == dkms_file
    assert toa_installer.loaded()
    assert (Path("/etc/modules-load.d/lvs-toa.conf").read_text().split()[-1]) == "toa"
    assert f"lvs-toa/{version}, {kver}, x86_64: installed" in toa_installer.dkms_status(kver)
    # DKMS signs what it builds (with a key it made): say so in the status.
    assert toa_installer.module_signer(dkms_file)
    log = kmsg_mark()
    assert "toa: loaded" in log

    res = installer("status")
    assert res.returncode == 0, res.stdout + res.stderr
    for expected in ("loaded       yes, version " + version, "at boot      yes",
                     dkms_file, "signed by", "signatures   not enforced",
                     f"trusted      {TRUSTED} (loaded), at boot via "
                     "/etc/modprobe.d/lvs-toa.conf"):
        assert expected in res.stdout, res.stdout

    # Any peer again (at run time): the self-test's five checks.
    Path(toa_installer.TRUSTED_PATH).write_text("\n")
    res = installer("selftest")
    assert res.returncode == 0 and res.stdout.count("PASS ") == 5, res.stdout + res.stderr

    res = installer("uninstall")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "unloaded toa" in res.stdout and "removed lvs-toa from DKMS" in res.stdout
    assert not toa_installer.loaded()
    assert not Path("/etc/modules-load.d/lvs-toa.conf").exists()
    assert not Path("/etc/modprobe.d/lvs-toa.conf").exists()
    assert not Path(dkms_file).exists()
    assert toa_installer.module_file(kver) is None
    assert not list(Path("/usr/src").glob("lvs-toa-*"))

    res = installer("status")
    assert res.returncode == 1 and "loaded       no" in res.stdout, res.stdout
    res = installer("uninstall")
    assert res.returncode == 0 and "nothing to remove" in res.stdout
