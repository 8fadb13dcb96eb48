"""Helpers of the benchmark-suite tests (a module name of its own: `conftest` is taken by tests/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_synthetic_csv(path: Path, n_rows: int, n_variates: int, seed: int = 0, freq: str = "h") -> pd.DataFrame:
    """Write a ``date`` + variates CSV with ``OT`` in the middle (the loader must move it last).

    Each variate is a noisy sine with its own level, so a forecaster has something to learn.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)[:, None]
    values = (np.sin(2 * np.pi * t / 24 + np.arange(n_variates)) + 0.1 * rng.standard_normal((n_rows, n_variates))) * (
        1 + np.arange(n_variates)
    ) + 10 * np.arange(n_variates)
    names = [f"v{i}" for i in range(n_variates - 1)]
    names.insert(len(names) // 2, "OT")
    frame = pd.DataFrame(values.astype(np.float32), columns=names)
    frame.insert(0, "date", pd.date_range("2020-01-01", periods=n_rows, freq=freq).astype(str))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return frame


def tiny_nlinear(input_chunk_length: int, output_chunk_length: int, random_state: int, pl_trainer_kwargs: dict):
    """A model factory of one's own (``run --model``): NLinear, 3 epochs."""
    from darts.models import NLinearModel

    return NLinearModel(
        input_chunk_length,
        output_chunk_length,
        n_epochs=3,
        random_state=random_state,
        pl_trainer_kwargs=pl_trainer_kwargs,
    )


def factory_of_another_lookback(output_chunk_length: int, pl_trainer_kwargs: dict):
    """A factory that ignores the lookback it is given."""
    from darts.models import NLinearModel

    return NLinearModel(12, output_chunk_length, pl_trainer_kwargs=pl_trainer_kwargs)


def factory_without_trainer_arguments(input_chunk_length: int, output_chunk_length: int):
    """A factory that drops the protocol's trainer arguments."""
    from darts.models import NLinearModel

    return NLinearModel(input_chunk_length, output_chunk_length)


def factory_of_a_local_model():
    """A factory of a model that cannot forecast windows it was not fitted on."""
    from darts.models import NaiveSeasonal

    return NaiveSeasonal()


def linear_regression(input_chunk_length: int, output_chunk_length: int, random_state: int):
    """A model of one's own without Lightning (scikit-learn's linear regression on the last ``L`` values)."""
    from darts.models import LinearRegressionModel

    return LinearRegressionModel(
        lags=input_chunk_length, output_chunk_length=output_chunk_length, random_state=random_state
    )


def run_record(
    model: str,
    mse: float,
    mae: float | None = None,
    seed: int = 1,
    seconds: float = 1.0,
    epochs: int = 3,
    best: int | None = None,
    **extra,
) -> dict:
    """A finished run record of ETTh1 at H = L = 96 in the quick tier, as the runner writes it (``best``: the
    0-based best epoch; ``extra`` replaces or adds top-level fields)."""
    budget = {"epoch_limit": 10, "max_samples_per_ts": None, "max_steps": None, "epochs_run": epochs}
    if best is not None:
        budget.update(best_epoch=best, best_val_loss=0.3)
    return {
        "status": "done",
        "run_id": f"etth1_h96_l96_{model}_s{seed}_x",
        "dataset": "ETTh1",
        "horizon": 96,
        "lookback": 96,
        "model": model,
        "seed": seed,
        "tier": "quick",
        "coordinates": {},
        "metrics": {"mse": mse, "mae": mse if mae is None else mae, "n_test_windows": 2785},
        "timing": {"train_seconds": seconds, "inference_seconds": 1.0},
        "parameters": {"total": 10, "trainable": 10},
        "memory": {"peak_mb": 1.0, "kind": "process_peak_rss"},
        "budget": budget,
        "model_config": {"patience": 3},
        "backbone": "compact" if model == "timesclip" else "n/a",
        "pretrained": False,
        "machine": {"label": "CPU only: 2 cores (test)"},
        "command": "python -m benchmarks run --tier quick",
        "example_window": {
            "index": 0,
            "variate": "OT",
            "context": [0.0] * 4,
            "truth": [1.0] * 2,
            "forecast": [0.5] * 2,
        },  # noqa: E501
        **extra,
    }
