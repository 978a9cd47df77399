"""What the wheel holds and what its commands find (pyproject.toml).

The wheel is built from a copy of the sources (setuptools writes build/
and an egg-info where it builds) and installed with ``--no-deps`` into a
virtual environment of its own, which sees the project's dependencies as a
plain path (the checkout's ``.pth`` files are not read there), so only the
wheel can answer for ipvsadm_py and lvs_tools.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "ipvsadm_py", "tools")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    res = _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                "--no-build-isolation", "--disable-pip-version-check", "-q", "-w", str(out)])
    assert res.returncode == 0, res.stdout + res.stderr
    (found,) = out.glob("*.whl")
    return found


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A venv with the wheel installed; the dependencies come from ours as a path."""
    where = tmp_path_factory.mktemp("venv") / "v"
    res = _run([sys.executable, "-m", "venv", "--without-pip", str(where)])
    assert res.returncode == 0, res.stderr
    python = where / "bin" / "python"
    res = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)])
    assert res.returncode == 0, res.stdout + res.stderr
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(site.stdout.strip(), "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return where


def test_the_wheel_holds_the_operators_packages_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"ipvsadm_py", "lvs_tools"}
    for module in ("ipvsadm_py/cli/__init__.py", "ipvsadm_py/config/schema.py",
                   "lvs_tools/__init__.py", "lvs_tools/tuning/cli.py",
                   "lvs_tools/tuning/profiles/default.yaml",
                   "lvs_tools/toa_installer.py", "lvs_tools/toa_selftest.py",
                   "lvs_tools/toa_craft.py", "lvs_tools/cluster/cli.py"):
        assert module in names
    # lvs_tools is tools/lvs_tools and nothing else of tools/ (the harness)
    ours = {f"lvs_tools/{p.relative_to(ROOT / 'tools' / 'lvs_tools')}"
            for p in (ROOT / "tools" / "lvs_tools").rglob("*") if p.suffix in (".py", ".yaml")}
    assert {name for name in names if name.startswith("lvs_tools/")} == ours


def test_the_wheel_names_both_commands(wheel):
    with zipfile.ZipFile(wheel) as whl:
        (entry,) = [n for n in whl.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = whl.read(entry).decode()
    assert "ipvsadm-py = ipvsadm_py.cli:main" in text
    assert "lvs-tune = lvs_tools.tuning.cli:run" in text
    assert "lvs-cluster = lvs_tools.cluster.cli:run" in text


@pytest.mark.parametrize("command,words", [
    ("ipvsadm-py", "ipvsadm"), ("lvs-tune", "lvs-tune: plan, apply, revert and audit"),
    ("lvs-cluster", "behind ECMP routers, announced by BIRD")])
def test_the_installed_commands_run(venv, tmp_path, command, words):
    res = _run([str(venv / "bin" / command), "--help"], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert words in res.stdout


def test_the_installed_package_comes_from_the_wheel_without_the_harness(venv, tmp_path):
    code = ("import ipvsadm_py, lvs_tools.toa_installer, lvs_tools.tuning.profile as p\n"
            "print(ipvsadm_py.__file__); print(lvs_tools.__file__)\n"
            "print(p.load_profile().strategy)\n"
            "import importlib.util as u; print(u.find_spec('tools'))\n")
    res = _run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    first, second, strategy, harness = res.stdout.splitlines()
    assert first.startswith(str(venv)) and second.startswith(str(venv))
    assert strategy and harness == "None"


def test_the_installed_toa_installer_says_it_needs_a_checkout(venv, tmp_path):
    res = _run([str(venv / "bin" / "python"), "-m", "lvs_tools.toa_installer", "check",
                "--kver", "6.1.0-57-amd64"], cwd=tmp_path)
    assert res.returncode == 1
    assert "needs a checkout of lvs-toolkit" in res.stderr
