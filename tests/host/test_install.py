"""Install over the distribution's IPVS, and DKMS, on this host's /lib/modules.

These change system state (they are undone at the end), so they need root
and refuse to run over an installation that was already there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tools import install, kbuild

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="changes /lib/modules: needs root"),
]

KERNELS = kbuild.installed_kernels()


def stock(kver: str, name: str) -> bool:
    return f"/lib/modules/{kver}/kernel/" in install.module_path(kver, name)


@pytest.mark.parametrize("kver", KERNELS)
def test_install_and_uninstall_switch_what_modprobe_loads(kver):
    modules = kbuild.ROOT / "build" / kver / "modules"
    assert list(modules.glob("ip_vs*.ko")), f"run ./inv build --kver {kver} first"
    if (Path("/lib/modules") / kver / install.SUBDIR).exists():
        pytest.fail(f"{install.SUBDIR} already exists for {kver}; not touching it")
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
    status = install._run(["dkms", "status"])
    if "lvs-" in status:
        pytest.fail(f"lvs packages are already registered with DKMS; not touching them:\n{status}")
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
