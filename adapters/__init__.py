"""Adapters that expose the TimesCLIP network to other forecasting libraries.

Installed as ``darts_timesclip.adapters`` (see ``[tool.setuptools.package-dir]`` in ``pyproject.toml``).
"""
