"""Benchmark suite for TimesCLIP and its baselines under the long-horizon forecasting protocol.

Run ``python -m benchmarks --help``. Layout: ``registry`` (datasets and splits), ``protocol``
(scaling, test windows, metrics), ``models`` (configurations and factories), ``tiers`` (named
sweeps), ``runner`` (jobs, run ids, resumable sweeps), ``report`` (tables and plots), ``anchors``
(published numbers), ``cli``.
"""
