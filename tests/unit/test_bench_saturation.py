"""A window counts only when the balancer was the limit (tools/bench/saturation.py)."""

from __future__ import annotations

import pytest

from tools.bench.saturation import (Window, busy_share, cost_ratio, lower_bound, median_figure,
                                    paired_figure)


def test_open_loop_saturated_by_excess_drops_or_cpu():
    assert Window(rate=1000, offered=1200).verdict() is None
    assert Window(rate=1000, offered=1050, dropped=60).verdict() is None
    assert Window(rate=1000, offered=1000, busy=0.95).verdict() is None


def test_open_loop_that_delivered_what_it_was_offered_is_not_saturated():
    """The issue's example: NAT offered and delivered the same 3.5-5 k pps."""
    why = Window(rate=3500, offered=3510, dropped=0, busy=0.4).verdict()
    assert why is not None
    assert "delivered 3500/s" in why and "offered 3510/s" in why and "40 % busy" in why


def test_closed_loop_needs_a_busy_cpu():
    assert Window(rate=800, busy=0.93).verdict() is None
    assert Window(rate=800, busy=0.5).verdict() == "delivered 800/s, measured CPU 50 % busy"
    assert Window(rate=800).verdict() is not None          # no evidence at all


def test_figure_uses_only_pairs_with_both_windows_saturated():
    hot, cold = 0.97, 0.2
    nums = [Window(100, busy=hot), Window(300, busy=cold), Window(110, busy=hot)]
    dens = [Window(50, busy=hot), Window(100, busy=hot), Window(50, busy=hot)]
    value, why = paired_figure(nums, dens)
    assert why is None
    assert value == pytest.approx((2.0 + 2.2) / 2)        # the cold pair left out


def test_figure_is_null_with_reason_when_most_pairs_are_not_saturated():
    nums = [Window(100, offered=100), Window(100, offered=101), Window(100, offered=300)]
    dens = [Window(50, offered=300)] * 3
    value, why = paired_figure(nums, dens)
    assert value is None
    assert why.startswith("not saturated: 2 of 3 pairs")
    assert "offered 100/s" in why


def test_figure_of_nothing_and_zero_baseline():
    assert paired_figure([], []) == (None, "no windows were measured")
    value, why = paired_figure([Window(10, busy=1.0)], [Window(0, busy=1.0)])
    assert value is None and "not saturated" in why


def test_busy_share_from_proc_stat_jiffies():
    before = [100, 0, 50, 800, 50, 0, 0, 0]
    after = [150, 0, 100, 900, 50, 0, 100, 0]       # 200 busy of 300
    assert busy_share(before, after) == pytest.approx(200 / 300)
    assert busy_share(before, before) is None
    stolen = [150, 0, 100, 900, 50, 0, 100, 100]    # 100 stolen by the host: idle
    assert busy_share(before, stolen) == pytest.approx(200 / 400)


def test_as_json_records_the_verdict():
    assert Window(10.04, offered=20, dropped=1).as_json() == {
        "rate": 10.0, "offered": 20, "dropped": 1, "saturated": True}


def test_lower_bound_when_only_the_baseline_was_saturated():
    """FULLNAT idling at 3,000/s beside a HAProxy saturated at 1,000/s has
    at least three times its capacity."""
    fnat = [Window(3000, busy=0.6), Window(2800, busy=0.6), Window(2900, busy=0.6)]
    peer = [Window(1000, busy=0.97), Window(1000, busy=0.5), Window(1000, busy=0.95)]
    assert paired_figure(fnat, peer)[0] is None
    assert lower_bound(fnat, peer) == pytest.approx(2.95)
    assert lower_bound(fnat, [Window(1000, busy=0.5)] * 3) is None


def test_cost_ratio_compares_cpu_per_unit_of_rate():
    """FULLNAT at 4,000/s with its CPU 40 % busy costs 0.1 ms; a peer at
    1,000/s with 95 % costs 0.95 ms: 9.5 times the capacity, if linear."""
    fnat = [Window(4000, busy=0.40), Window(4000, busy=0.40)]
    peer = [Window(1000, busy=0.95), Window(1000, busy=0.95)]
    assert cost_ratio(fnat, peer) == pytest.approx(9.5)
    assert cost_ratio([Window(4000)], [Window(1000, busy=0.9)]) is None


def test_median_figure_of_runs_not_interleaved():
    many = [Window(900, busy=0.95), Window(950, busy=0.97), Window(100, busy=0.2)]
    few = [Window(1000, busy=0.99), Window(1000, busy=0.98)]
    value, why = median_figure(many, few)
    assert why is None and value == pytest.approx(0.925)
    value, why = median_figure(many, [Window(1000, busy=0.3), Window(1000, busy=0.99),
                                      Window(1000, busy=0.4)])
    assert value is None and why.startswith("not saturated: 3 of 6 windows")


def test_taken_is_offered_less_what_the_backlog_refused():
    assert Window(900, offered=1200, dropped=200).taken == 1000
    assert Window(900, busy=0.95).taken is None
