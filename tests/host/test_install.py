"""Install over the distribution's IPVS, and DKMS, on this host's /lib/modules.

These change system state, so they need root.  An installation of ours that
is already there (an operator's, or one a killed run left behind) is moved
aside for the duration of the module and put back exactly afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests import guest_plugin
from tools import install, kbuild

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="changes /lib/modules: needs root"),
]

KERNELS = kbuild.installed_kernels()
DKMS_STATE = Path("/var/lib/dkms")


def _ours_in_place() -> list[Path]:
    """Every file or directory an earlier install of ours put on this host."""
    found = [Path("/lib/modules") / kver / install.SUBDIR for kver in KERNELS]
    for name, _ in install.DKMS_PACKAGES.values():
        state = DKMS_STATE / name
        found.append(state)
        found.extend(Path("/usr/src").glob(f"{name}-*"))
        # dkms install copies each built module to updates/dkms of its kernel
        for built in state.glob("*/*/*/module/*.ko*"):
            kver = built.parts[-4]
            found.append(Path("/lib/modules") / kver / "updates/dkms" / built.name)
    return [path for path in found if path.exists() or path.is_symlink()]


@pytest.fixture(scope="module", autouse=True)
def earlier_install_set_aside():
    """Move an installation of ours out of the way; restore it afterwards."""
    present = _ours_in_place()
    if not present:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="lvs-set-aside-", dir="/var/tmp") as tmp:
        moved = []
        for number, path in enumerate(present):
            keep = Path(tmp) / str(number)
            shutil.move(path, keep)
            moved.append((keep, path))
        for kver in KERNELS:
            install.depmod(kver)
        try:
            yield
        finally:
            for keep, path in moved:
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(keep, path)
            for kver in KERNELS:
                install.depmod(kver)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Install the builds of this run: the host's kernels among its targets
    (``./inv test`` builds the lines it tests, not every kernel installed)."""
    if "host_kver" in metafunc.fixturenames:
        targets = guest_plugin.kernel_targets(metafunc.config)
        metafunc.parametrize("host_kver", [k for k in KERNELS if k in targets])


def stock(kver: str, name: str) -> bool:
    return f"/lib/modules/{kver}/kernel/" in install.module_path(kver, name)


def test_install_and_uninstall_switch_what_modprobe_loads(host_kver):
    kver = host_kver
    modules = kbuild.ROOT / "build" / kver / "modules"
    assert list(modules.glob("ip_vs*.ko")), f"run ./inv build --kver {kver} first"
    assert stock(kver, "ip_vs")
    try:
        installed = install.install(kver, modules)
        assert {p.name for p in installed} == {p.name for p in modules.glob("*.ko")}
        for name in ("ip_vs", "ip_vs_rr", "ip_vs_wlc", "ip_vs_ftp", "toa"):
            assert install.module_path(kver, name) == \
                f"/lib/modules/{kver}/{install.SUBDIR}/{name}.ko"
    finally:
        assert install.uninstall(kver)
    assert stock(kver, "ip_vs") and stock(kver, "ip_vs_rr")
    assert not install.uninstall(kver)  # a second uninstall finds nothing


def test_install_without_a_build_says_what_to_run(tmp_path):
    with pytest.raises(kbuild.BuildError, match="run ./inv build"):
        install.install(KERNELS[0] if KERNELS else "6.1.0-1-amd64", tmp_path)


@pytest.mark.skipif(shutil.which("dkms") is None, reason="dkms is not installed")
def test_dkms_builds_and_installs_both_sets_for_every_kernel():
    assert "lvs-" not in install._run(["dkms", "status"])
    try:
        for name in install.DKMS_PACKAGES:
            install.dkms_install(name, KERNELS)
        status = install._run(["dkms", "status"])
        version = install.project_version()
        for kver in KERNELS:
            assert f"lvs-ipvs/{version}, {kver}, x86_64: installed" in status
            assert f"lvs-toa/{version}, {kver}, x86_64: installed" in status
            for name in ("ip_vs", "ip_vs_rr", "toa"):
                assert f"/lib/modules/{kver}/updates/dkms/{name}.ko" in \
                    install.module_path(kver, name)
    finally:
        for name in install.DKMS_PACKAGES:
            install.dkms_remove(name)
    for kver in KERNELS:
        assert stock(kver, "ip_vs")
    assert "lvs-" not in install._run(["dkms", "status"])
    assert not list(Path("/usr/src").glob("lvs-*"))
