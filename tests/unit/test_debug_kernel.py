"""Configuration checks of tools/debug_kernel.py and the fragment it applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import debug_kernel, kbuild


def test_parse_config_reads_values_and_not_set_lines():
    text = "# comment\nCONFIG_A=y\nCONFIG_B=\"x y\"\n# CONFIG_C is not set\nCONFIG_D=12\n"
    assert debug_kernel.parse_config(text) == {
        "CONFIG_A": "y", "CONFIG_B": '"x y"', "CONFIG_C": "n", "CONFIG_D": "12"}


def test_mismatches_name_every_line_the_config_did_not_keep():
    fragment = "CONFIG_KASAN=y\nCONFIG_IP_VS=m\n# CONFIG_MODVERSIONS is not set\nCONFIG_X=1\n"
    config = "CONFIG_KASAN=y\nCONFIG_IP_VS=y\nCONFIG_MODVERSIONS=y\n"
    assert debug_kernel.config_mismatches(fragment, config) == [
        "CONFIG_IP_VS=m (the .config has y)",
        "CONFIG_MODVERSIONS=n (the .config has y)",
        "CONFIG_X=1 (the .config has n)"]


def test_the_fragment_asks_for_the_sanitizers_and_ipvs_as_modules():
    wanted = debug_kernel.parse_config(debug_kernel.FRAGMENT.read_text())
    for name in ("KASAN", "KASAN_GENERIC", "KASAN_INLINE", "DEBUG_KMEMLEAK", "PROVE_LOCKING",
                 "PROVE_RCU", "DEBUG_ATOMIC_SLEEP", "DEBUG_OBJECTS", "DEBUG_LIST",
                 "KPROBES_ON_FTRACE", "NET_NS", "VETH", "BRIDGE", "IPV6", "NF_CONNTRACK",
                 "NET_CLS_FLOWER", "NET_ACT_GACT", "NET_SCH_NETEM", "9P_FS", "OVERLAY_FS"):
        assert wanted[f"CONFIG_{name}"] == "y", name
    assert wanted["CONFIG_IP_VS"] == "m"


def test_ipvs_is_configured_as_on_debians_kernel_of_the_line():
    """The same IP_VS_* values as Debian's 6.12 kernel: upstream's Makefile
    then builds the same list of modules."""
    kvers = [k for k in kbuild.installed_kernels() if kbuild.kernel_line(k) == "6.12"]
    config = Path(f"/boot/config-{kvers[-1]}") if kvers else None
    if config is None or not config.exists():
        pytest.skip("no Debian 6.12 kernel installed here")
    debian = {k: v for k, v in debug_kernel.parse_config(config.read_text()).items()
              if k.startswith("CONFIG_IP_VS")}
    wanted = debug_kernel.parse_config(debug_kernel.FRAGMENT.read_text())
    assert {k: wanted.get(k, "n") for k in debian} == debian
