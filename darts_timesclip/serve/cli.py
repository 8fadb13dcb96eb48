"""``darts-timesclip serve MODEL_PATH`` (and ``python -m darts_timesclip.serve``): load a model, run uvicorn."""

from __future__ import annotations

import argparse
import copy
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from darts_timesclip._checks import non_negative_float, positive_int
from darts_timesclip.serve.service import ENGINES, ServiceLimits

API_KEY_ENV = "DARTS_TIMESCLIP_API_KEY"


def load_model(path: str | Path) -> Any:
    """A saved ``TimesCLIPModel`` or ``VQTransformerModel``, loaded on the CPU; a clear error for a missing file."""
    from darts.models.forecasting.torch_forecasting_model import TorchForecastingModel

    import darts_timesclip  # noqa: F401 - registers the package's models with Darts' loader
    from darts_timesclip import TimesCLIPModel, VQTransformerModel

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`MODEL_PATH` `{path}` is not a file; pass what `model.save(path)` wrote.")
    try:
        model = TimesCLIPModel.load(str(path), map_location="cpu")
    except Exception:
        model = VQTransformerModel.load(str(path), map_location="cpu")
    if not isinstance(model, TorchForecastingModel):
        raise ValueError(f"`{path}` holds a {type(model).__name__}, not a model this service can serve.")
    return model


#: The loggers of Lightning's notices, which :func:`quiet_prediction_logs` sets to WARNING.
_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning")


def quiet_prediction_logs() -> None:
    """Silence what every Darts ``predict`` prints (the ``darts`` engine): a service logs one line per request."""
    import logging
    import warnings

    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*num_workers.*")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``serve`` (shared by ``darts-timesclip serve`` and ``python -m darts_timesclip.serve``)."""
    parser = parser or argparse.ArgumentParser(prog="python -m darts_timesclip.serve",
                                               description="The forecasting service for a saved model.")  # fmt: skip
    parser.add_argument("model_path", metavar="MODEL_PATH", help="a file written by `TimesCLIPModel.save`")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="default: 8000")
    parser.add_argument("--api-key", default=None, help=f"required key (default: ${API_KEY_ENV}; none: open)")
    parser.add_argument("--engine", choices=ENGINES, default="torch",
                        help="torch (default) or onnx: concurrent requests batched through the direct predictor; "
                        "darts: one Darts predict per request under a lock (for comparison)")  # fmt: skip
    parser.add_argument("--max-batch", type=positive_int, default=64, help="most requests per forward pass (64)")
    parser.add_argument(
        "--batch-wait-ms",
        type=non_negative_float,
        default=2.0,
        help="longest wait for more requests after the first of a batch, in ms (default: 2)",
    )
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch (and ONNX Runtime) threads (default: torch's)")  # fmt: skip
    parser.add_argument("--device", default=None, help="device of the torch engine, e.g. cuda (default: cpu)")
    parser.add_argument("--max-n", type=positive_int, default=None, help="largest horizon (default: 10 x output "
                        "length)")  # fmt: skip
    parser.add_argument("--max-body-mb", type=float, default=10.0, help="largest request body in MiB (default: 10)")
    parser.add_argument("--log-level", default="info", help="uvicorn's log level")
    return parser


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, plus the service's access log (one line per request) on stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["service"] = {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s",
                                       "use_colors": None}  # fmt: skip
    config["handlers"]["service"] = {"formatter": "service", "class": "logging.StreamHandler",
                                     "stream": "ext://sys.stderr"}  # fmt: skip
    config["loggers"]["darts_timesclip.serve"] = {"handlers": ["service"], "level": level.upper(), "propagate": False}
    return config


def serve(args: argparse.Namespace) -> int:
    """Load the model and run uvicorn until interrupted (SIGINT / SIGTERM: requests in flight are answered).

    Torch's thread count (``--threads``) and the Lightning loggers' levels (:func:`quiet_prediction_logs`) are the
    service's while it runs, and as they were once it returns: a call from another program (or a test) leaves its
    process as it found it.

    Parameters
    ----------
    args
        The parsed command line (:func:`build_parser`).

    Returns
    -------
    int
        0 once the server stops; 2 when the extra is missing or the model cannot be loaded (the reason on stderr).
    """
    import logging

    from darts_timesclip.extras import MissingExtraError, require_extra

    try:
        require_extra("serve", "`darts-timesclip serve`")
    except MissingExtraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import torch

    threads = torch.get_num_threads()
    levels = {name: logging.getLogger(name).level for name in _LIGHTNING_LOGGERS}
    try:
        return _serve(args)
    finally:
        torch.set_num_threads(threads)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _serve(args: argparse.Namespace) -> int:
    import torch
    import uvicorn

    from darts_timesclip.serve.app import BatchSettings, create_app

    if args.threads:
        torch.set_num_threads(args.threads)
    limits = ServiceLimits(max_n=args.max_n, max_body_bytes=int(args.max_body_mb * 2**20))
    quiet_prediction_logs()
    try:
        model = load_model(args.model_path)
        app = create_app(
            model,
            api_key=args.api_key or os.environ.get(API_KEY_ENV),
            limits=limits,
            engine=args.engine,
            batching=BatchSettings(max_batch=args.max_batch, wait_ms=args.batch_wait_ms),
            device=args.device,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                log_config=log_config(args.log_level))  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m darts_timesclip.serve``."""
    return serve(build_parser().parse_args(argv))
