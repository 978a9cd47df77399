"""Our kernel sources and patches are checkpatch-clean, with no version tests.

checkpatch.pl comes from the kernel source package (staged with the IPVS
sources into build/KVER/upstream/scripts by tools/kbuild.py).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tools import kbuild

KERNEL = kbuild.ROOT / "kernel"
SOURCES = sorted(p for p in KERNEL.rglob("*") if p.suffix in (".c", ".h"))
PATCHES = sorted(KERNEL.rglob("*.patch"))


def checkpatch() -> Path:
    for kver in sorted(kbuild.installed_kernels(), reverse=True):
        try:
            target = kbuild.discover(kver)
        except kbuild.BuildError:
            continue
        upstream = kbuild.extract_upstream(target, kbuild.ROOT / "build" / kver / "upstream")
        return upstream / "scripts/checkpatch.pl"
    pytest.skip("no kernel source package installed to take checkpatch.pl from")


def run_checkpatch(args: list[str], stdin: str | None = None) -> str:
    res = subprocess.run(["perl", str(checkpatch()), "--no-tree", "--show-types", *args],
                         capture_output=True, text=True, input=stdin)
    return res.stdout + res.stderr


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(KERNEL)))
def test_source_is_checkpatch_clean(path):
    out = run_checkpatch(["-f", str(path)])
    assert "total: 0 errors, 0 warnings" in out, out


@pytest.mark.parametrize("path", PATCHES, ids=lambda p: p.name)
def test_patch_is_checkpatch_clean(path):
    if not kbuild.has_hunks(path):
        pytest.skip("a form without hunks (its lines need no change there)")
    # Fed on stdin: given a path inside a git checkout, checkpatch reads the
    # patch file itself as a new source file.
    out = run_checkpatch(["-"], stdin=path.read_text())
    assert "total: 0 errors, 0 warnings" in out, out


def test_no_version_tests_outside_the_compat_header():
    pattern = re.compile(r"LINUX_VERSION_CODE|KERNEL_VERSION\s*\(")
    offenders = [str(p) for p in SOURCES + PATCHES
                 if p.name != "compat.h" and pattern.search(p.read_text())]
    assert offenders == []
