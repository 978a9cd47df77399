"""Staging and patching logic of tools/kbuild.py, on fake source trees."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tools import kbuild

UPSTREAM_CORE = """\
static int __init ip_vs_init(void)
{
\tpr_info("ipvs loaded.\\n");
\treturn 0;
}
"""


def make_tarball(path: Path, line: str, files: dict[str, str]) -> Path:
    """A linux-source-X.Y.tar.xz holding ``files`` (relative to its top folder)."""
    top = path.parent / f"src-{line}" / f"linux-source-{line}"
    for rel, text in files.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(text)
    with tarfile.open(path, "w:xz") as tar:
        tar.add(top, arcname=f"linux-source-{line}")
    return path


@pytest.fixture
def fake_system(tmp_path):
    """/lib/modules/KVER/build and /usr/src with a source tarball, all fake."""
    kver = "6.1.0-99-amd64"
    headers = tmp_path / "usr/src/linux-headers"
    (headers / "include/linux").mkdir(parents=True)
    (headers / "Makefile").write_text("# fake\n")
    (headers / "include/linux/unaligned.h").write_text("#define get_unaligned(p) (*(p))\n")
    modules = tmp_path / "lib/modules" / kver
    modules.mkdir(parents=True)
    (modules / "build").symlink_to(headers)
    src = tmp_path / "usr/src"
    make_tarball(src / "linux-source-6.1.tar.xz", "6.1", {
        "net/netfilter/ipvs/ip_vs_core.c": UPSTREAM_CORE,
        "net/netfilter/ipvs/Makefile": "obj-m += ip_vs.o\n",
        "include/net/ip_vs.h": "/* ip_vs.h */\n",
        "include/uapi/linux/ip_vs.h": "/* uapi */\n",
        "tools/testing/selftests/netfilter/ipvs.sh": "#!/bin/sh\n",
        "drivers/unrelated.c": "not extracted\n",
    })
    versions = {f"linux-image-{kver}": "6.1.99-1", "linux-source-6.1": "6.1.99-1"}
    return {"kver": kver, "modules_root": tmp_path / "lib/modules", "src_root": src,
            "versions": versions}


def discover(fake, **kw):
    return kbuild.discover(fake["kver"], modules_root=fake["modules_root"],
                           src_root=fake["src_root"], version_of=fake["versions"].get, **kw)


def write_project(root: Path, patches: dict[str, str], series: str | None) -> Path:
    """A project checkout with the given patch series and our own files."""
    (root / "kernel/ip_vs/patches").mkdir(parents=True)
    (root / "kernel/toa").mkdir(parents=True)
    (root / "kernel/compat").mkdir(parents=True)
    (root / "kernel/ip_vs/ip_vs_ours.c").write_text("/* ours */\n")
    (root / "kernel/ip_vs/Kbuild").write_text("# ours\n")
    (root / "kernel/toa/toa.c").write_text("/* toa */\n")
    (root / "kernel/compat/compat.h").write_text("/* compat */\n")
    (root / "Kbuild").write_text("obj-m += x/\n")
    (root / "pyproject.toml").write_text('[project]\nversion = "9.8.7"\n')
    for rel, text in patches.items():
        (root / "kernel/ip_vs/patches" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "kernel/ip_vs/patches" / rel).write_text(text)
    if series is not None:
        (root / "kernel/ip_vs/series").write_text(series)
    return root


GOOD_PATCH = """\
--- a/net/netfilter/ipvs/ip_vs_core.c
+++ b/net/netfilter/ipvs/ip_vs_core.c
@@ -1,5 +1,5 @@
 static int __init ip_vs_init(void)
 {
-\tpr_info("ipvs loaded.\\n");
+\tpr_info("ipvs loaded (FNAT-capable).\\n");
 \treturn 0;
 }
"""
BAD_PATCH = GOOD_PATCH.replace("ipvs loaded.", "something else.")


def test_kernel_line():
    assert kbuild.kernel_line("6.12.95+deb12-amd64") == "6.12"
    assert kbuild.kernel_line("6.1.0-56-amd64") == "6.1"
    with pytest.raises(kbuild.BuildError):
        kbuild.kernel_line("vmlinuz")


def test_discover_finds_headers_and_matching_source(fake_system):
    target = discover(fake_system)
    assert target.line == "6.1"
    assert target.tarball.name == "linux-source-6.1.tar.xz"
    assert target.image_version == target.source_version == "6.1.99-1"


def test_discover_names_the_missing_headers_package(fake_system):
    with pytest.raises(kbuild.BuildError, match="apt-get install linux-headers-6.1.0-98-amd64$"):
        kbuild.discover("6.1.0-98-amd64", modules_root=fake_system["modules_root"],
                        src_root=fake_system["src_root"], version_of=lambda p: None)
    with pytest.raises(kbuild.BuildError,
                       match="apt-get install linux-headers-6.1.0-98-amd64=6.1.99-2$"):
        kbuild.discover("6.1.0-98-amd64", modules_root=fake_system["modules_root"],
                        src_root=fake_system["src_root"], version_of=lambda p: "6.1.99-2")


def test_discover_names_the_missing_source_package(fake_system):
    (fake_system["src_root"] / "linux-source-6.1.tar.xz").unlink()
    with pytest.raises(kbuild.BuildError,
                       match=r"apt-get install linux-source-6.1=6.1.99-1"):
        discover(fake_system)
    # TOA alone builds from the headers only.
    assert discover(fake_system, need_source=False).kver == fake_system["kver"]


def test_discover_refuses_a_source_of_another_version(fake_system):
    fake_system["versions"]["linux-source-6.1"] = "6.1.100-1"
    with pytest.raises(kbuild.BuildError, match="sources must match the kernel"):
        discover(fake_system)


def test_backports_hint_pins_the_version_not_the_suite():
    # -t bookworm-backports would move Debian 12's metapackages to backports
    target = kbuild.Target("6.12.95+deb12-amd64", Path("/x"), Path("/y"),
                           "6.12.95-1~bpo12+1", None)
    assert target.source_install_hint() == (
        "apt-get install linux-source-6.12=6.12.95-1~bpo12+1")


def test_extract_takes_only_ipvs_members_and_caches(fake_system, tmp_path):
    target = discover(fake_system)
    dest = tmp_path / "upstream"
    kbuild.extract_upstream(target, dest)
    assert (dest / "net/netfilter/ipvs/ip_vs_core.c").exists()
    assert (dest / "include/uapi/linux/ip_vs.h").exists()
    assert (dest / "tools/testing/selftests/netfilter/ipvs.sh").exists()
    assert not (dest / "drivers").exists()
    (dest / "marker").write_text("kept while the stamp matches")
    kbuild.extract_upstream(target, dest)
    assert (dest / "marker").exists()


def test_read_series_skips_comments_and_rejects_paths(tmp_path):
    series = tmp_path / "series"
    series.write_text("# comment\n\n0001-a.patch  # why\n0002-b.patch\n")
    assert kbuild.read_series(series) == ["0001-a.patch", "0002-b.patch"]
    series.write_text("../evil.patch\n")
    with pytest.raises(kbuild.BuildError, match="bad patch name"):
        kbuild.read_series(series)



def test_a_line_takes_the_common_hunks_and_its_own_form(tmp_path):
    root = write_project(tmp_path, {"0001-x.patch": "common", "6.1/0001-x.patch": "6.1 form",
                                    "6.12/0001-x.patch": "6.12 form", "0002-y.patch": "y"},
                         "0001-x.patch\n0002-y.patch\n")
    ipvs = root / "kernel/ip_vs"

    def read(line):
        return [[p.read_text() for p in step] for step in kbuild.resolve_patches(ipvs, line)]

    assert read("6.1") == [["common"], ["6.1 form"], ["y"]]
    assert read("6.6") == [["common"], ["6.1 form"], ["y"]]   # no form after it
    # the newest form not after the line first, then the older ones
    assert read("6.12") == [["common"], ["6.12 form", "6.1 form"], ["y"]]
    assert read("7.3") == [["common"], ["6.12 form", "6.1 form"], ["y"]]
    with pytest.raises(kbuild.BuildError, match=r"none for 5\.10.*patches/5\.10/0001-x.patch"):
        kbuild.resolve_patches(ipvs, "5.10")


def test_lines_compare_as_numbers_and_a_patch_may_be_line_only(tmp_path):
    root = write_project(tmp_path, {"6.9/0001-x.patch": "6.9", "6.10/0001-x.patch": "6.10"},
                         "0001-x.patch\n")
    ipvs = root / "kernel/ip_vs"
    assert [[p.read_text() for p in step] for step in kbuild.resolve_patches(ipvs, "6.12")] \
        == [["6.10", "6.9"]]
    assert [[p.read_text() for p in step] for step in kbuild.resolve_patches(ipvs, "6.9")] \
        == [["6.9"]]


def test_series_naming_a_missing_patch_fails(tmp_path):
    root = write_project(tmp_path, {}, "0001-missing.patch\n")
    with pytest.raises(kbuild.BuildError, match="0001-missing.patch"):
        kbuild.resolve_patches(root / "kernel/ip_vs", "6.1")


def test_stage_applies_series_and_adds_our_files(fake_system, tmp_path):
    root = write_project(tmp_path / "proj", {"0001-good.patch": GOOD_PATCH},
                         "0001-good.patch\n")
    tree = kbuild.stage(discover(fake_system), tmp_path / "out", root=root)
    core = (tree / "net/netfilter/ipvs/ip_vs_core.c").read_text()
    assert "FNAT-capable" in core
    assert (tree / "net/netfilter/ipvs/ip_vs_ours.c").exists()
    assert (tree / "net/netfilter/ipvs/Kbuild").read_text() == "# ours\n"
    assert (tree / "include/net/ip_vs.h").exists()
    assert (tree / "toa/toa.c").exists()
    assert '"9.8.7"' in (tree / "include/lvs/version.h").read_text()
    autoconf = (tree / "include/lvs/compat_autoconf.h").read_text()
    assert "#define LVS_HAVE_LINUX_UNALIGNED_H 1" in autoconf
    assert "LVS_HAVE_REGISTER_NET_SYSCTL_SZ" not in autoconf


def test_an_export_is_probed_in_module_symvers(fake_system, tmp_path):
    """What a kernel exports to modules is read from its Module.symvers (a
    declaration in a header does not say a module may link against it)."""
    target = discover(fake_system)
    (target.headers / "include/linux/ftrace.h").write_text(
        "void ftrace_free_filter(struct ftrace_ops *ops);\n")
    out = tmp_path / "autoconf.h"
    kbuild.write_compat_autoconf(target, out)
    assert "LVS_HAVE_FTRACE_FREE_FILTER" not in out.read_text()
    (target.headers / "Module.symvers").write_text(
        "0x8b5340fc\tftrace_free_filter\tvmlinux\tEXPORT_SYMBOL_GPL\t\n")
    kbuild.write_compat_autoconf(target, out)
    assert "#define LVS_HAVE_FTRACE_FREE_FILTER 1" in out.read_text()


def test_stage_is_repeatable(fake_system, tmp_path):
    root = write_project(tmp_path / "proj", {"0001-good.patch": GOOD_PATCH},
                         "0001-good.patch\n")
    target = discover(fake_system)
    kbuild.stage(target, tmp_path / "out", root=root)
    tree = kbuild.stage(target, tmp_path / "out", root=root)  # patches a fresh copy
    assert "FNAT-capable" in (tree / "net/netfilter/ipvs/ip_vs_core.c").read_text()


def test_a_patch_that_does_not_apply_stops_with_its_name(fake_system, tmp_path):
    root = write_project(tmp_path / "proj", {"0001-good.patch": GOOD_PATCH,
                                             "0002-bad.patch": BAD_PATCH},
                         "0001-good.patch\n0002-bad.patch\n")
    with pytest.raises(kbuild.BuildError) as err:
        kbuild.stage(discover(fake_system), tmp_path / "out", root=root)
    assert "0002-bad.patch does not apply" in str(err.value)
    assert "6.1.99-1" in str(err.value)


def test_a_step_of_forms_applies_the_first_that_fits(tmp_path):
    """A stable update can bring an older line's form: the newest form that
    does not fit is passed over, and a step where none fits names them all."""
    tree = tmp_path / "tree"
    (tree / "net/netfilter/ipvs").mkdir(parents=True)
    core = tree / "net/netfilter/ipvs/ip_vs_core.c"
    core.write_text('static int __init ip_vs_init(void)\n{\n\tpr_info("ipvs loaded.\\n");\n'
                    '\treturn 0;\n}\n')
    for form, text in (("6.12", BAD_PATCH), ("6.1", GOOD_PATCH)):
        (tmp_path / form).mkdir()
        (tmp_path / form / "0001-x.patch").write_text(text)
    newest, older = tmp_path / "6.12/0001-x.patch", tmp_path / "6.1/0001-x.patch"
    kbuild.apply_patches(tree, [(newest, older)], "the test tree")
    assert "FNAT-capable" in core.read_text()
    assert not list(tree.rglob("*.rej"))
    with pytest.raises(kbuild.BuildError, match=r"any of its forms \(6\.12/0001-x.patch or "
                                               r"6\.1/0001-x.patch"):
        kbuild.apply_patches(tree, [(newest, older)], "the patched tree")


def test_a_form_without_hunks_changes_nothing_and_never_stands_in(tmp_path):
    """A form that is a description only (the line has nothing to change
    there) is taken as a line's newest form, but not when a newer form
    exists and does not fit."""
    tree = tmp_path / "tree"
    (tree / "net/netfilter/ipvs").mkdir(parents=True)
    core = tree / "net/netfilter/ipvs/ip_vs_core.c"
    text = 'static int __init ip_vs_init(void)\n{\n\tpr_info("ipvs loaded.\\n");\n' \
           '\treturn 0;\n}\n'
    core.write_text(text)
    (tmp_path / "5.10").mkdir()
    (tmp_path / "6.1").mkdir()
    empty = tmp_path / "5.10/0001-x.patch"
    empty.write_text("Subject: [PATCH] nothing to change before 6.1\n")
    kbuild.apply_patches(tree, [(empty,)], "the 5.10 tree")
    assert core.read_text() == text
    newest = tmp_path / "6.1/0001-x.patch"
    newest.write_text(BAD_PATCH)
    with pytest.raises(kbuild.BuildError, match=r"0001-x.patch does not apply"):
        kbuild.apply_patches(tree, [(newest, empty)], "the 6.1 tree")
    newest.write_text(GOOD_PATCH)
    kbuild.apply_patches(tree, [(newest, empty)], "the 6.1 tree")
    assert "FNAT-capable" in core.read_text()


def test_toa_only_stage_needs_no_source(fake_system, tmp_path):
    (fake_system["src_root"] / "linux-source-6.1.tar.xz").unlink()
    root = write_project(tmp_path / "proj", {}, None)
    tree = kbuild.stage(discover(fake_system, need_source=False), tmp_path / "out",
                        sets=["toa"], root=root)
    assert (tree / "toa/toa.c").exists()
    assert not (tree / "net").exists()


def test_unknown_module_set_is_refused(tmp_path):
    with pytest.raises(kbuild.BuildError, match="unknown module set"):
        kbuild.build("6.1.0-1-amd64", tmp_path, sets=["ipvs", "nope"])


def test_series_of_the_project_applies_to_both_kernel_lines(tmp_path):
    """The real series against the real sources of every installed kernel."""
    kernels = kbuild.installed_kernels()
    if not kernels:
        pytest.skip("no 6.1/6.12 kernel headers installed")
    for kver in kernels:
        target = kbuild.discover(kver)
        upstream = kbuild.extract_upstream(target, kbuild.ROOT / "build" / kver / "upstream")
        copy = tmp_path / kver
        shutil.copytree(upstream, copy)
        patches = kbuild.resolve_patches(kbuild.ROOT / "kernel/ip_vs", target.line)
        assert patches, "the series is empty"
        kbuild.apply_patches(copy, patches, kver)


def test_a_dkms_tree_builds_on_its_host_with_the_system_python(tmp_path):
    """DKMS runs ``python3 tools/kbuild.py`` in /usr/src/PACKAGE-VERSION, where
    the checkout's build roots are absent: the tree builds for the host's own
    kernels and says what is missing, without a traceback."""
    from tools import install
    tree = install.dkms_source_tree("toa", tmp_path)
    res = subprocess.run([shutil.which("python3") or "python3", "tools/kbuild.py",
                          "--kver", "6.1.0-999-amd64", "--out", "_out", "--set", "toa"],
                         cwd=tree, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert "kernel headers for 6.1.0-999-amd64 are missing" in res.stderr


def test_series_of_the_project_applies_to_the_build_roots_kernels(tmp_path, monkeypatch):
    """The real series against the sources of every kernel of another
    release that was built here (build/KVER/upstream, staged in its build
    root): trixie's 6.12 and trixie-backports' 7.x."""
    from tools import buildroot
    monkeypatch.delenv(buildroot.INSIDE, raising=False)
    staged = sorted(d.parent.name for d in (kbuild.ROOT / "build").glob("*/upstream")
                    if (d / ".stamp").exists() and buildroot.release_for(d.parent.name))
    if not staged:
        pytest.skip("no kernel of another release built here (./inv build --kver K)")
    for kver in staged:
        copy = tmp_path / kver
        shutil.copytree(kbuild.ROOT / "build" / kver / "upstream", copy)
        kbuild.apply_patches(copy, kbuild.resolve_patches(kbuild.ROOT / "kernel/ip_vs",
                                                          kbuild.kernel_line(kver)), kver)


# ---------------------------------------------------------------- local kernels

def fake_local(root: Path, fake_system, release: str = "6.1.99-lvs-debug") -> kbuild.LocalKernel:
    """A built local kernel in ``root``/build/debug-kernel, from the fake 6.1 tarball."""
    local = kbuild.LocalKernel("debug", root / "build/debug-kernel", "6.1")
    (local.obj / "include/config").mkdir(parents=True)
    (local.obj / "include/config/kernel.release").write_text(release + "\n")
    (local.obj / "Module.symvers").write_text("")
    (local.base / "boot").mkdir(parents=True)
    (local.base / "boot" / f"vmlinuz-{release}").write_text("")
    (local.base / "src").mkdir()
    target = discover(fake_system)
    local.source_stamp.write_text(kbuild._stamp_text(target))
    return local


@pytest.fixture
def local_debug(fake_system, tmp_path, monkeypatch):
    local = fake_local(tmp_path, fake_system)
    monkeypatch.setattr(kbuild, "local_kernels", lambda root=None: {"debug": local})
    return local


def test_a_local_kernel_is_named_by_alias_or_release(local_debug):
    assert kbuild.local_kernel("debug") == local_debug
    assert kbuild.local_kernel("6.1.99-lvs-debug") == local_debug
    assert kbuild.local_kernel("6.1.99-1-amd64") is None
    assert kbuild.resolve_kver("debug") == "6.1.99-lvs-debug"
    assert kbuild.resolve_kver("6.1.0-57-amd64") == "6.1.0-57-amd64"
    assert local_debug.image() == local_debug.base / "boot/vmlinuz-6.1.99-lvs-debug"


def test_a_local_kernel_builds_against_its_tree(local_debug, fake_system):
    target = kbuild.discover("debug", src_root=fake_system["src_root"],
                             version_of=fake_system["versions"].get)
    assert target.kver == "6.1.99-lvs-debug"
    assert target.headers == local_debug.obj
    assert target.source_version == target.image_version == "6.1.99-1"
    assert "KCFLAGS=-g" in target.make_args


def test_a_local_kernel_not_built_or_from_another_tarball_is_refused(local_debug,
                                                                     fake_system):
    local_debug.source_stamp.write_text("another tarball\n")
    with pytest.raises(kbuild.BuildError, match="./inv debug-kernel rebuilds it"):
        kbuild.discover("debug", src_root=fake_system["src_root"],
                        version_of=fake_system["versions"].get)
    (local_debug.obj / "Module.symvers").unlink()
    with pytest.raises(kbuild.BuildError, match="not built yet: ./inv debug-kernel"):
        kbuild.resolve_kver("debug")


def _hunks(patch: Path) -> set[str]:
    """The hunks of a patch: file name and body, without line numbers."""
    hunks, path, body = set(), "", None
    for line in patch.read_text().splitlines() + ["diff --git end"]:
        if line.startswith(("@@", "diff --git")):
            if body:
                hunks.add(path + "\n" + "\n".join(body))
            body = [] if line.startswith("@@") else None
            if line.startswith("diff --git"):
                path = line.split()[-1]
        elif body is not None:
            body.append(line)
    return hunks


def test_each_kernel_change_is_written_once():
    """A hunk that has the same form on two kernel lines belongs in the
    common patch: the per-line parts hold only what differs."""
    patch_root = kbuild.ROOT / "kernel/ip_vs/patches"
    for name in kbuild.read_series(kbuild.ROOT / "kernel/ip_vs/series"):
        forms = {d: _hunks(patch_root / d / name) for d in kbuild._line_dirs(patch_root)
                 if (patch_root / d / name).exists()}
        common = _hunks(patch_root / name) if (patch_root / name).exists() else set()
        seen: dict[str, str] = {}
        for line, hunks in forms.items():
            for body in hunks:
                assert body not in common, f"{line}/{name} repeats a common hunk"
                assert body not in seen, f"{line}/{name} repeats a hunk of {seen.get(body)}"
                seen[body] = line
