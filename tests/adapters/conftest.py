"""The adapters' tests need their optional libraries (``pip install "darts-timesclip[pytorch-forecasting]"``)."""

from __future__ import annotations

import importlib.util

# skip collection, not fail it, where the extra is not installed
collect_ignore_glob = [] if importlib.util.find_spec("pytorch_forecasting") else ["test_pytorch_forecasting*.py"]
