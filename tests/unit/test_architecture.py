"""The layers of docs/architecture.md and what each may import, checked by
reading every import (``ast``; imports inside functions too).

Layers, bottom up: wire (the kernel's numbers, messages, the socket),
model (the vocabulary and its rules), API (the translation and the verbs),
front ends (the command line, the configuration file, the exporter), the operator's tools
(``lvs_tools``, in tools/lvs_tools/), harness (the rest of tools/, and
tests/).  A layer imports its own and lower layers; front ends do not
reach past the API into the wire layer or the codec; what is installed
(ipvsadm_py, lvs_tools) never imports the harness, except the TOA
installer's ``checkout()`` (toa_base), inside the function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "ipvsadm_py"
OPERATOR = "lvs_tools"                    # a package of its own, in tools/lvs_tools/
TOPS = (PACKAGE, OPERATOR, "tools", "tests")

LAYERS = {
    "wire": ["ipvsadm_py.abi", "ipvsadm_py.wire", "ipvsadm_py.wire_fast", "ipvsadm_py.nl"],
    "model": ["ipvsadm_py.model", "ipvsadm_py.rules", "ipvsadm_py.order",
              "ipvsadm_py.acl"],
    "api": ["ipvsadm_py", "ipvsadm_py.errors", "ipvsadm_py.verbs", "ipvsadm_py.codec",
            "ipvsadm_py.api", "ipvsadm_py.procfs", "ipvsadm_py.views", "ipvsadm_py.nft"],
    "front end": ["ipvsadm_py.cli", "ipvsadm_py.config", "ipvsadm_py.bench",
                  "ipvsadm_py.exporter"],
    "operator": [OPERATOR],
    "harness": ["tools", "tests"],
}
MAY_IMPORT = {
    "wire": {"wire"},
    "model": {"model"},
    "api": {"wire", "model", "api"},
    "front end": {"model", "api", "front end"},
    "operator": {"model", "api", "front end", "operator"},
    "harness": {"wire", "model", "api", "front end", "operator", "harness"},
}
# Modules split by job import one way: each may import, of its own top
# package (ipvsadm_py, lvs_tools), only what is listed (plus anything outside it).
ONE_WAY = {
    "ipvsadm_py.model.kinds": set(),
    "ipvsadm_py.model.addresses": set(),
    "ipvsadm_py.model.entries": {"ipvsadm_py.model.kinds", "ipvsadm_py.model.addresses"},
    "ipvsadm_py.cli.names": {"ipvsadm_py.model"},
    "ipvsadm_py.cli.fmt": {"ipvsadm_py.cli.names", "ipvsadm_py.model", "ipvsadm_py.order"},
    "ipvsadm_py.cli.reports": {"ipvsadm_py.cli.fmt", "ipvsadm_py.cli.names", "ipvsadm_py.model",
                               "ipvsadm_py.procfs"},
    "ipvsadm_py.config.nodes": {"ipvsadm_py.rules"},
    "ipvsadm_py.config.desired": {"ipvsadm_py.acl", "ipvsadm_py.errors", "ipvsadm_py.model"},
    "ipvsadm_py.config.lists": {"ipvsadm_py.acl", "ipvsadm_py.config.desired",
                                "ipvsadm_py.config.nodes", "ipvsadm_py.model"},
    "ipvsadm_py.config.services": {"ipvsadm_py.config.desired", "ipvsadm_py.config.lists",
                                   "ipvsadm_py.config.nodes", "ipvsadm_py.model",
                                   "ipvsadm_py.rules"},
    "ipvsadm_py.config.cluster": {"ipvsadm_py.config.desired", "ipvsadm_py.config.nodes"},
    "ipvsadm_py.config.keepalived_blocks": set(),
    "ipvsadm_py.config.keepalived_values": {"ipvsadm_py.config.keepalived_blocks",
                                            "ipvsadm_py.model", "ipvsadm_py.rules"},
    "ipvsadm_py.config.keepalived_lists": {"ipvsadm_py.acl", "ipvsadm_py.config.keepalived_blocks",
                                           "ipvsadm_py.config.keepalived_values",
                                           "ipvsadm_py.model"},
    "ipvsadm_py.config.keepalived_servers": {"ipvsadm_py.acl",
                                             "ipvsadm_py.config.keepalived_blocks",
                                             "ipvsadm_py.config.keepalived_values",
                                             "ipvsadm_py.model", "ipvsadm_py.rules"},
    "ipvsadm_py.config.keepalived_conf": {"ipvsadm_py.config.desired",
                                          "ipvsadm_py.config.keepalived_blocks",
                                          "ipvsadm_py.config.keepalived_lists",
                                          "ipvsadm_py.config.keepalived_servers",
                                          "ipvsadm_py.config.keepalived_values",
                                          "ipvsadm_py.model", "ipvsadm_py.rules"},
    "lvs_tools.toa_base": set(),
    "lvs_tools.toa_facts": {"lvs_tools.toa_base"},
    "lvs_tools.toa_state": {"lvs_tools.toa_base"},
    "lvs_tools.toa_trust": {"lvs_tools.toa_base"},
    "lvs_tools.toa_bpf": {"lvs_tools.toa_base"},
    "lvs_tools.toa_bpf_steps": {"lvs_tools.toa_base", "lvs_tools.toa_bpf", "lvs_tools.toa_facts",
                                "lvs_tools.toa_state"},
    "lvs_tools.toa_steps": {"lvs_tools.toa_base", "lvs_tools.toa_bpf_steps",
                            "lvs_tools.toa_facts", "lvs_tools.toa_state", "lvs_tools.toa_trust"},
    "lvs_tools.toa_installer": {"lvs_tools.toa_base", "lvs_tools.toa_bpf_steps",
                                "lvs_tools.toa_facts", "lvs_tools.toa_state",
                                "lvs_tools.toa_steps", "lvs_tools.toa_trust"},
}
# The TOA installer builds toa.ko from the checkout (DKMS runs tools/kbuild.py):
# these harness modules, imported inside its checkout() (toa_base), never at the top.
CHECKOUT_IMPORTS = {"lvs_tools.toa_base": {"tools.install", "tools.kbuild"}}
# Front ends speak the model: the numbers stay below them.
NOT_FROM_FRONT_ENDS = {"ipvsadm_py.codec"}
# The nftables binding (python3-nftables) is not used: nft.py runs `nft -j`.
# Third-party packages only some layers need.
ONLY_IN = {"pyroute2": {"operator", "harness"}, "yaml": {"front end", "operator", "harness"},
           "kmodpy": {"api", "harness"},
           "prometheus_client": {"front end", "harness"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[:2] == ["tools", OPERATOR]:
        parts.pop(0)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_path(module: str) -> Path:
    """Where a module of ours is, without its suffix (lvs_tools is in tools/)."""
    parts = module.split(".")
    return Path(ROOT, *(["tools"] if parts[0] == OPERATOR else []), *parts)


def harness_tops() -> set[str]:
    """Names of tools/'s modules and packages; tools/ is on sys.path for
    lvs_tools, so each of these would import a second time by that name."""
    return {p.stem for p in (ROOT / "tools").iterdir()
            if p.suffix == ".py" or (p / "__init__.py").exists()} - {"__init__", OPERATOR}


def layer_of(module: str) -> str | None:
    """The layer of a module: the longest listed name it is, or is under."""
    best, length = None, -1
    for layer, names in LAYERS.items():
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > length:
                if name == PACKAGE and module != PACKAGE:
                    continue        # the package root names itself only
                best, length = layer, len(name)
    return best


def sources() -> list[Path]:
    return sorted(p for top in (PACKAGE, "tools", "tests") for p in (ROOT / top).rglob("*.py"))


def top_level_lines(source: str) -> set[int]:
    """Lines of the imports a module runs when it is imported (not inside a def)."""
    tree = ast.parse(source)
    inner = {n.lineno for f in ast.walk(tree)
             if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return {n.lineno for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom))} - inner


def imports(module: str, source: str, package: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import in a module's source; ``from P import
    X`` names P.X when X is a module of P."""
    here = module.split(".") if package else module.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = source_path(f"{base}.{alias.name}")
                is_module = sub.with_suffix(".py").exists() or sub.is_dir()
                out.append((node.lineno, f"{base}.{alias.name}" if is_module else base))
    return out


def faults(module: str, source: str, package: bool = False) -> list[str]:
    """What a module imports that its layer may not."""
    own = layer_of(module)
    if own is None:
        return [f"{module} belongs to no layer (add it to LAYERS)"]
    out = []
    at_top = top_level_lines(source)
    for line, target in imports(module, source, package):
        top = target.split(".")[0]
        if top in ONLY_IN and own not in ONLY_IN[top]:
            out.append(f"{line}: {target} is for the {sorted(ONLY_IN[top])} layers only")
        if top in harness_tops():
            out.append(f"{line}: {target}: a harness module goes by tools.{top}")
        if top not in TOPS:
            continue
        if target in CHECKOUT_IMPORTS.get(module, ()) and line not in at_top:
            continue
        layer = layer_of(target)
        if layer not in MAY_IMPORT[own]:
            out.append(f"{line}: the {own} layer imports {target} ({layer})")
        if own == "front end" and target in NOT_FROM_FRONT_ENDS:
            out.append(f"{line}: a front end imports {target}")
    return out


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in sources() if layer_of(module_name(p)) is None]
    assert not missing


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path):
    found = faults(module_name(path), path.read_text(), path.name == "__init__.py")
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


@pytest.mark.parametrize("module,source,fault", [
    ("ipvsadm_py.nl", "from ipvsadm_py.cli import parse\n", "imports ipvsadm_py.cli"),
    ("ipvsadm_py.model", "from ipvsadm_py import abi\n", "imports ipvsadm_py.abi"),
    ("ipvsadm_py.cli.run", "from ipvsadm_py import codec\n", "a front end imports"),
    ("ipvsadm_py.cli.run", "def f():\n    from ipvsadm_py.wire import encode\n",
     "imports ipvsadm_py.wire"),
    ("ipvsadm_py.wire", "import pyroute2\n", "pyroute2 is for"),
    ("ipvsadm_py.api", "from tests.oracles import pyroute2_ipvs\n", "imports tests"),
    ("lvs_tools.tuning.cli", "from tools import guest\n", "imports tools.guest"),
    ("lvs_tools.toa_installer", "from tools import kbuild\n", "imports tools.kbuild"),
    ("lvs_tools.toa_selftest", "def f():\n    from tools import kbuild\n",
     "imports tools.kbuild"),
    ("ipvsadm_py.cli.run", "from lvs_tools import tuning\n", "imports lvs_tools.tuning"),
    ("tests.kernel.test_toa", "import netlab\n", "goes by tools.netlab"),
    ("ipvsadm_py.exporter.collect", "from ipvsadm_py import codec\n", "a front end imports"),
    ("ipvsadm_py.exporter.collect", "from ipvsadm_py.nl import Channel\n",
     "imports ipvsadm_py.nl"),
    ("ipvsadm_py.views", "import prometheus_client\n", "prometheus_client is for"),
    ("ipvsadm_py.acl", "from ipvsadm_py import nft\n", "imports ipvsadm_py.nft"),
    ("ipvsadm_py.nft", "from ipvsadm_py.cli import acl\n", "imports ipvsadm_py.cli.acl"),
])
def test_the_checker_sees_forbidden_imports(module, source, fault):
    assert any(fault in found for found in faults(module, source))


def test_the_installer_may_reach_the_checkout_inside_a_function():
    source = "def f():\n    from tools import install, kbuild\n"
    assert faults("lvs_tools.toa_base", source) == []
    assert faults("lvs_tools.toa_steps", source)        # elsewhere: no


def one_way_faults(module: str, source: str) -> list[str]:
    """What a split module imports of its own top package beyond its ONE_WAY list."""
    allowed, top = ONE_WAY[module], module.split(".")[0]
    return [f"{line}: {module} imports {target}" for line, target in imports(module, source)
            if target.split(".")[0] == top
            and not any(target == a or target.startswith(a + ".") for a in allowed)]


@pytest.mark.parametrize("module", sorted(ONE_WAY))
def test_split_modules_import_one_way(module):
    path = source_path(module).with_suffix(".py")
    assert not one_way_faults(module, path.read_text())


def test_the_one_way_check_sees_a_step_back():
    assert one_way_faults("ipvsadm_py.cli.names", "from ipvsadm_py.cli import fmt\n")
    assert one_way_faults("ipvsadm_py.model.kinds", "from ipvsadm_py.model import entries\n")
    assert one_way_faults("ipvsadm_py.config.keepalived_blocks",
                          "from ipvsadm_py.config.keepalived_values import Reader\n")
    assert one_way_faults("lvs_tools.toa_facts", "from lvs_tools.toa_steps import check\n")
