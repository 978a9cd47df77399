"""Profiles (tools/lvs_tools/tuning/profile.py): the default profile and validation."""

from __future__ import annotations

import pytest
import yaml

from lvs_tools.tuning.profile import (DEFAULT_PROFILE, PROFILE_DIR, ProfileError, Rfs,
                                      load_profile, parse_profile)


def test_default_profile_follows_the_source_design():
    prof = load_profile()
    assert prof.name == "default"
    assert prof.strategy == "per-cpu" and prof.cpus is None and prof.interfaces is None
    assert prof.rps == "single-queue" and prof.xps is True and prof.rfs is None
    assert prof.irqbalance == "off"
    assert prof.offloads == {"rx-gro": False, "rx-lro": False, "rx-gro-hw": False}
    assert int(prof.sysctls["net.core.netdev_max_backlog"]) > 1000
    assert prof.conn_tab_bits == 20


def test_every_packaged_profile_loads():
    names = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
    assert "default" in names and len(names) >= 2
    for name in names:
        assert load_profile(name).name == name


def test_docs_give_a_reason_for_every_default_setting():
    """docs/tuning.md has a table row for every key and sysctl of the default profile."""
    docs = (DEFAULT_PROFILE.parents[4] / "docs" / "tuning.md").read_text()
    data = yaml.safe_load(DEFAULT_PROFILE.read_text())
    keys = [k for k in data if k != "description"] + list(data["sysctls"]) + \
        list(data["offloads"]) + list(data["ipvs"])
    for key in keys:
        assert f"| `{key}" in docs, f"docs/tuning.md has no row for {key}"


def test_yaml_on_off_and_aliases():
    prof = parse_profile(yaml.safe_load("""
        rps: off
        irqbalance: off
        offloads: {gro: on, large-receive-offload: off, rx-gro-list: off}
        cpus: 2-5
        interfaces: [eth0]
        rfs: {sock_flow_entries: 32768}
        irq_map: {eth0: [0, "1-2"]}
    """), "t")
    assert prof.rps == "off" and prof.irqbalance == "off"
    assert prof.offloads == {"rx-gro": True, "rx-lro": False, "rx-gro-list": False}
    assert prof.cpus == {2, 3, 4, 5} and prof.interfaces == ("eth0",)
    assert prof.rfs == Rfs(32768, None)
    assert prof.irq_map == {"eth0": ({0}, {1, 2})}


def test_overrides():
    prof = load_profile().with_overrides("numa-local", ("eth1",))
    assert prof.strategy == "numa-local" and prof.interfaces == ("eth1",)
    with pytest.raises(ProfileError):
        load_profile().with_overrides("random")


@pytest.mark.parametrize("data, message", [
    ({"stratgey": "per-cpu"}, "unknown keys stratgey"),
    ({"strategy": "fastest"}, "strategy: 'fastest' is not one of"),
    ({"strategy": "explicit"}, "explicit needs an irq_map"),
    ({"rps": "some"}, "rps: 'some'"),
    ({"xps": "yes"}, "xps: expected true/false"),
    ({"cpus": "3-1"}, "cpus: bad CPU range"),
    ({"cpus": ""}, "cpus: empty CPU list"),
    ({"interfaces": "eth0"}, "interfaces: expected auto or a list"),
    ({"irq_map": {"eth0": "0-3"}}, "irq_map.eth0: expected a list"),
    ({"irq_map": {"eth0": ["0", "x"]}}, "irq_map.eth0[1]"),
    ({"sysctls": {"net/core/x": 1}}, "is not a sysctl name"),
    ({"sysctls": {"net.core.x": [1]}}, "sysctls.net.core.x: expected a number"),
    ({"offloads": {"gro": "maybe"}}, "offloads.gro: expected true/false"),
    ({"ipvs": {"conn_tab_bits": 30}}, "8..27"),
    ({"ipvs": {"table": 3}}, "ipvs: expected"),
    ({"rfs": {"sock_flow_entries": -1}}, "rfs.sock_flow_entries"),
    ({"irqbalance": "on"}, "irqbalance: 'on' is not one of"),
    (["a"], "expected a mapping"),
])
def test_bad_profiles_name_the_key(data, message):
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_profile(data, "bad")


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(bad)
