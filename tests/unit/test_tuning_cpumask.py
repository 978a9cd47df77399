"""CPU mask and list encodings of tools/lvs_tools/tuning/cpumask.py against known values.

The expected strings are what Linux prints for ``nr_cpu_ids`` bits
(``%*pb`` / ``%*pbl``): 32-bit groups, most significant first, the first
group only as wide as its bits need.
"""

from __future__ import annotations

import random

import pytest

from lvs_tools.tuning import cpumask

KNOWN_MASKS = [
    # (cpus, nr_cpu_ids, kernel text)
    ((), 2, "0"),
    ((0,), 2, "1"),
    ((0, 1), 2, "3"),
    ((1,), 4, "2"),
    (range(16), 16, "ffff"),
    ((3,), 16, "0008"),
    ((15,), 16, "8000"),
    (range(32), 32, "ffffffff"),
    ((0,), 32, "00000001"),
    (range(36), 36, "f,ffffffff"),
    ((35,), 36, "8,00000000"),
    ((0,), 96, "00000000,00000000,00000001"),
    ((32,), 96, "00000000,00000001,00000000"),
    ((95,), 96, "80000000,00000000,00000000"),
    (range(96), 96, "ffffffff,ffffffff,ffffffff"),
    ((0, 48), 96, "00000000,00010000,00000001"),
    (range(130), 130, "3,ffffffff,ffffffff,ffffffff,ffffffff"),
    ((129,), 130, "2,00000000,00000000,00000000,00000000"),
    ((128,), 130, "1,00000000,00000000,00000000,00000000"),
    ((0, 64), 130, "0,00000000,00000001,00000000,00000001"),
    ((), 130, "0,00000000,00000000,00000000,00000000"),
    (range(65, 130), 130, "3,ffffffff,fffffffe,00000000,00000000"),
]


@pytest.mark.parametrize("cpus, nbits, text", KNOWN_MASKS)
def test_format_mask_matches_the_kernel(cpus, nbits, text):
    assert cpumask.format_mask(cpus, nbits) == text


@pytest.mark.parametrize("cpus, nbits, text", KNOWN_MASKS)
def test_parse_mask_reads_the_kernel_form(cpus, nbits, text):
    assert cpumask.parse_mask(text) == frozenset(cpus)


def test_parse_mask_accepts_short_and_uppercase_input():
    assert cpumask.parse_mask("1,0") == {32}
    assert cpumask.parse_mask("FF") == set(range(8))
    assert cpumask.parse_mask("00000000,00000000,00000003") == {0, 1}


@pytest.mark.parametrize("bad", ["", "xyz", "1,,2", "123456789", "0x3", "3 ,1"])
def test_parse_mask_rejects_garbage(bad):
    with pytest.raises(ValueError):
        cpumask.parse_mask(bad)


def test_format_mask_refuses_cpus_beyond_the_width():
    with pytest.raises(ValueError):
        cpumask.format_mask({16}, 16)
    with pytest.raises(ValueError):
        cpumask.format_mask({0}, 0)


KNOWN_LISTS = [
    ((), ""),
    ((0,), "0"),
    ((0, 1), "0-1"),
    ((0, 1, 2, 3, 8, 10, 11), "0-3,8,10-11"),
    (range(130), "0-129"),
    ((1, 3, 5), "1,3,5"),
    (tuple(range(0, 48)) + tuple(range(96, 144)), "0-47,96-143"),
]


@pytest.mark.parametrize("cpus, text", KNOWN_LISTS)
def test_cpulist_both_ways(cpus, text):
    assert cpumask.format_cpulist(cpus) == text
    assert cpumask.parse_cpulist(text) == frozenset(cpus)


def test_cpulist_input_in_any_order_with_spaces():
    assert cpumask.parse_cpulist(" 8, 0-2 ,4\n") == {0, 1, 2, 4, 8}


@pytest.mark.parametrize("bad", ["a", "3-1", "1-", "-1", "1-2-3", "0x1"])
def test_cpulist_rejects_garbage(bad):
    with pytest.raises(ValueError):
        cpumask.parse_cpulist(bad)


@pytest.mark.parametrize("nbits", [1, 2, 16, 31, 32, 33, 64, 96, 130, 256, 8192])
def test_random_sets_round_trip(nbits):
    rng = random.Random(nbits)
    for _ in range(50):
        cpus = frozenset(c for c in range(nbits) if rng.random() < 0.3)
        text = cpumask.format_mask(cpus, nbits)
        groups = text.split(",")
        assert len(groups) == (nbits + 31) // 32
        assert all(len(g) == 8 for g in groups[1:])
        assert len(groups[0]) == ((nbits - 1) % 32 + 1 + 3) // 4
        assert cpumask.parse_mask(text) == cpus
        assert cpumask.parse_cpulist(cpumask.format_cpulist(cpus)) == cpus
