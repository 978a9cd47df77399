"""docs/monitoring: the alert rules pass ``promtool check rules`` and their
own ``promtool test rules``; the Grafana dashboard is well-formed, its
queries parse, and rules and dashboard use only metrics lvs-exporter
exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ipvsadm_py.exporter import names

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "docs" / "monitoring"
RULES = MONITORING / "lvs-alerts.yml"
DASHBOARD = MONITORING / "lvs-dashboard.json"
EXPORTED = {m.name for role in ("lb", "rs") for m in names.every_metric(role)}
# Grafana's variables, replaced by something PromQL parses
GRAFANA_VARS = {"$__rate_interval": "1m", "$instance": ".*", "$vip": ".*",
                "$rs_instance": ".*"}

needs_promtool = pytest.mark.skipif(not shutil.which("promtool"),
                                    reason="promtool not installed (tools/bootstrap.py)")


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\blvs_[a-z0-9_]+", expr))


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, text=True, capture_output=True)


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]] + \
        [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]


def rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


@needs_promtool
def test_promtool_checks_the_rules():
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_the_rules_pass_their_unit_tests():
    done = promtool("test", "rules", "lvs-alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_use_only_exported_metrics():
    used = set().union(*map(metric_names, rule_exprs()))
    assert used and used <= EXPORTED, used - EXPORTED


def test_every_alert_has_a_severity_and_a_summary():
    doc = yaml.safe_load(RULES.read_text())
    for rule in (r for g in doc["groups"] for r in g["rules"]):
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_the_dashboard_is_well_formed():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["title"] and panel["type"] in ("timeseries", "stat", "table")
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)) and all(t["expr"] for t in panel["targets"])
    variables = {v["name"] for v in dash["templating"]["list"]}
    used = set(re.findall(r"\$(\w+)", json.dumps(dash["panels"]))) - {"__rate_interval"}
    assert used <= variables


def test_the_dashboard_uses_only_exported_metrics():
    used = set().union(*map(metric_names, dashboard_exprs()))
    assert used and used <= EXPORTED, used - EXPORTED


def _as_promql(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return re.sub(r"label_values\((.*), *\w+\)$", r"\1", expr)


@needs_promtool
def test_the_dashboard_queries_parse(tmp_path):
    """Every query as a recording rule: promtool parses each expression."""
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": _as_promql(e)}
        for i, e in enumerate(dashboard_exprs())]}]}
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = promtool("check", "rules", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_unit_file_runs_lvs_exporter_with_valid_options():
    from ipvsadm_py.exporter import cli

    unit = (MONITORING / "lvs-exporter.service").read_text()
    sections = re.findall(r"^\[(\w+)\]", unit, re.M)
    assert sections == ["Unit", "Service", "Install"]
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
    assert Path(exec_start[0]).name == "lvs-exporter"
    args = cli.parser().parse_args(exec_start[1:])
    assert cli.split_listen(args.listen)[1] > 0
    assert re.search(r"^Restart=on-failure$", unit, re.M)
    assert "CAP_NET_ADMIN" in unit


def test_the_readme_lists_every_metric():
    text = (MONITORING / "README.md").read_text()
    missing = sorted(name for name in EXPORTED if f"`{name}`" not in text)
    assert not missing
