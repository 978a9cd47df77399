"""A guest of a kernel built in the checkout (the debug kernel): how
tools/guest.py boots it and how tools/guest_init.py gives it /lib/modules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools import guest, guest_init, kbuild

RELEASE = "6.12.95-lvs-debug"


@pytest.fixture
def local(tmp_path, monkeypatch) -> kbuild.LocalKernel:
    """A built local kernel: image, build tree, modules_install output."""
    kernel = kbuild.LocalKernel("debug", tmp_path / "debug-kernel", "6.12")
    (kernel.obj / "include/config").mkdir(parents=True)
    (kernel.obj / "include/config/kernel.release").write_text(RELEASE + "\n")
    (kernel.obj / "Module.symvers").write_text("")
    (kernel.base / "boot").mkdir()
    (kernel.base / "boot" / f"vmlinuz-{RELEASE}").write_text("")
    stock = kernel.modules_root / RELEASE
    (stock / "kernel/net/netfilter/ipvs").mkdir(parents=True)
    (stock / "modules.order").write_text("kernel/net/netfilter/ipvs/ip_vs.ko\n")
    (stock / "modules.builtin").write_text("kernel/net/bridge/bridge.ko\n")
    (stock / "build").symlink_to(kernel.obj)
    monkeypatch.setattr(kbuild, "local_kernels", lambda root=None: {"debug": kernel})
    return kernel


def test_the_guest_boots_the_local_image_without_a_host_module_folder(local):
    cfg = guest.GuestConfig(RELEASE)
    assert cfg.local == local
    assert cfg.vmlinuz == local.base / "boot" / f"vmlinuz-{RELEASE}"
    assert cfg.modules_root == local.modules_root
    argv = guest.vng_command(cfg, "true")
    assert argv[argv.index("--run") + 1] == str(cfg.vmlinuz)
    # /lib/modules/RELEASE does not exist on the host: the guest makes it
    # in its overlay of /lib instead of vng overlaying a missing folder
    assert "--overlay-rwdir" not in argv


def test_tcg_is_single_threaded_unless_asked(local):
    """Every guest runs TCG single-threaded (README, Tests); a caller may ask
    for multi-threaded TCG (the benchmark's --mttcg), nothing else."""
    def accel(cfg):
        argv = guest.vng_command(cfg, "true")
        return argv[argv.index("--qemu-opt=-accel") + 1]

    assert accel(guest.GuestConfig(RELEASE)) == "--qemu-opt=tcg,thread=single"
    assert accel(guest.GuestConfig(RELEASE, tcg_thread="multi")) == "--qemu-opt=tcg,thread=multi"
    with pytest.raises(ValueError, match="tcg_thread must be one of single, multi"):
        guest.GuestConfig(RELEASE, tcg_thread="mttcg")


def test_a_debian_kernel_keeps_its_overlay():
    kver = next(iter(kbuild.installed_kernels()), None)
    if kver is None:
        pytest.skip("no Debian kernel installed here")
    argv = guest.vng_command(guest.GuestConfig(kver), "true")
    assert argv[argv.index("--overlay-rwdir") + 1] == f"/lib/modules/{kver}"
    assert argv[argv.index("--run") + 1] == f"/boot/vmlinuz-{kver}"


def test_modroot_links_the_stock_modules_and_the_build_tree(local, tmp_path):
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "ip_vs.ko").write_bytes(b"")
    try:
        root = guest.prepare_modroot(RELEASE, ours, tmp_path / "base", local.modules_root)
    except guest.GuestError as exc:      # depmod on an empty .ko file
        pytest.skip(f"depmod refuses the fake module: {exc}")
    assert os.readlink(root / "kernel") == str(local.modules_root / RELEASE / "kernel")
    assert os.readlink(root / "build") == str(local.obj)
    assert (root / "updates/lvs-toolkit/ip_vs.ko").exists()


def test_guest_init_makes_the_module_folder_of_a_local_kernel(tmp_path):
    modroot = tmp_path / "modroot"
    (modroot / "updates/lvs-toolkit").mkdir(parents=True)
    (modroot / "updates/lvs-toolkit/ip_vs.ko").write_bytes(b"ko")
    (modroot / "modules.dep").write_text("updates/lvs-toolkit/ip_vs.ko:\n")
    (modroot / "kernel").symlink_to("/stock/kernel")
    (modroot / "build").symlink_to("/tree/obj")
    live = tmp_path / "lib/modules"
    guest_init.install_modules(RELEASE, modroot, live)
    folder = live / RELEASE
    assert os.readlink(folder / "kernel") == "/stock/kernel"
    assert os.readlink(folder / "build") == "/tree/obj"
    assert (folder / "modules.dep").read_text() == "updates/lvs-toolkit/ip_vs.ko:\n"
    assert (folder / "updates/lvs-toolkit/ip_vs.ko").read_bytes() == b"ko"
    # a Debian kernel's folder keeps its own links
    (modroot / "kernel").unlink()
    (modroot / "kernel").symlink_to("/elsewhere")
    guest_init.install_modules(RELEASE, modroot, live)
    assert os.readlink(folder / "kernel") == "/stock/kernel"
