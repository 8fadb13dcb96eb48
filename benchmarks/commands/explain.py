"""``python -m benchmarks explain``: the README's pictures of what TimesCLIP sees and attends to, on ETTh1.

Fits the ``compact`` TimesCLIP (random CLIP weights; ``--backbone`` for another) on the most recent ETTh1 train
windows for a short budget, then draws, with :class:`~darts_timesclip.TimesCLIPExplainer`, the variate-selection
attention over the last train window and that window in each image encoding. The attention behind the heatmap is
written beside it, ``variate_attention.csv``: one row per forecast target, one column per memory token, each row
summing to 1.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from benchmarks.study import Command
from darts_timesclip._io import save_figure_atomic, write_text_atomic

logger = logging.getLogger(__name__)


class Explain(Command):
    """The README's pictures: variate-selection attention and the image views, on ETTh1."""

    name = "explain"
    flags = ("data_dir", "output", "backbone", "verbose")
    defaults = {"output": Path("docs/images")}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--epochs", type=int, default=2)
        parser.add_argument("--windows", type=int, default=2048, help="most recent train windows per epoch")

    def execute(self, args: argparse.Namespace) -> int:
        """Write ``variate_attention.png``, ``variate_attention.csv`` and ``views.png`` into ``--output``."""
        return draw_pictures(args)


def draw_pictures(args: argparse.Namespace) -> int:
    """Fit briefly, then draw with :class:`~darts_timesclip.TimesCLIPExplainer` (see the module docstring)."""
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    from darts import TimeSeries

    from benchmarks.callbacks import EpochLog
    from benchmarks.protocol import prepare
    from benchmarks.registry import get_spec, read_dataset
    from darts_timesclip import TimesCLIPExplainer, TimesCLIPModel

    data = prepare(read_dataset(get_spec("ETTh1"), args.data_dir), lookback=96)
    train = data.split_series("train")
    train = TimeSeries.from_times_and_values(
        pd.date_range("2016-07-01", periods=len(train), freq="h"),  # ETTh1's hourly clock (period 24)
        train.values(),
        columns=list(train.components),
    )
    model = TimesCLIPModel(
        96,
        96,
        backbone=args.backbone,
        n_epochs=args.epochs,
        batch_size=64,
        random_state=2021,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "callbacks": [EpochLog("timesclip ETTh1 (explain)")],
        },
    )
    model.fit(train, max_samples_per_ts=args.windows)
    explainer = TimesCLIPExplainer(model)
    args.output.mkdir(parents=True, exist_ok=True)
    result = explainer.explain()
    ax = explainer.plot_variate_attention(result)
    save_figure_atomic(ax.figure, args.output / "variate_attention.png", dpi=110)
    write_text_atomic(args.output / "variate_attention.csv", result.get_attention().to_csv(index_label="target"))
    save_figure_atomic(explainer.plot_views(train, max_variates=3), args.output / "views.png", dpi=90)
    written = ("variate_attention.png", "variate_attention.csv", "views.png")
    print("wrote " + ", ".join(str(args.output / name) for name in written))
    return 0
