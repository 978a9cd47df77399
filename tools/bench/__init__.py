"""The benchmarks of ``./inv bench`` (docs/benchmarks.md).

``host``: ``./inv bench`` (boot a guest, collect, table/JSON/chart);
``runner``: the measurements, inside the guest; ``report``: table and chart;
``gen.c``: the C traffic generator.
"""
