"""Benchmark suite for TimesCLIP and its baselines under the long-horizon forecasting protocol.

Run ``python -m benchmarks --help``. Layout: ``registry`` (datasets and splits), ``protocol`` (scaling, test
windows, metrics), ``models`` (configurations, the one table of TimesCLIP's, and factories), ``tiers`` (named
sweeps), ``runner`` (jobs, run ids, the resumable sweep), ``executors`` (local and Ray), ``report`` (tables and
plots), ``anchors`` (published numbers), ``study`` (the command and study interfaces, the shared flags), ``cli``
(the one entry point); ``studies/`` (one file per study), ``commands/`` (one-off measurements and figures),
``examples/`` (a model factory of one's own).
"""
