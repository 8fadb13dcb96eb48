"""``python -m darts_timesclip.pretrain``: pretrain TimesCLIP's towers on your series (and/or synthetic ones).

Examples
--------
Pretrain the ``compact`` backbone on every CSV of a directory plus 2,000 synthetic series::

    python -m darts_timesclip.pretrain --output my-backbone --data ../shared/data --synthetic 2000 --max-steps 2000

then forecast with it: ``TimesCLIPModel(96, 96, backbone="my-backbone")``. Run the same command again after an
interruption and it resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from darts_timesclip.pretraining.options import DEFAULT_OBJECTIVE, OBJECTIVES
from darts_timesclip.pretraining.trainer import DEFAULT_CONTEXT_LENGTHS, pretrain_backbone


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m darts_timesclip.pretrain",
        description="Pretrain both CLIP towers of a TimesCLIP backbone on time series; writes a directory that "
        "TimesCLIPModel(backbone=DIR) loads.",
    )
    parser.add_argument("--output", required=True, help="output directory (resumed if it holds this run's checkpoint)")
    parser.add_argument("--data", nargs="*", default=[], help="CSV / CSV.GZ files or directories of them")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N", help="add N synthetic series")
    parser.add_argument("--backbone", default="compact", help="preset to pretrain, or a directory to continue from")
    parser.add_argument("--max-steps", type=int, default=1000, help="optimisation steps (default: 1000)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per step (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, corpus and sampling")
    parser.add_argument(
        "--objective", choices=OBJECTIVES, default=DEFAULT_OBJECTIVE, help="temporal objective (default: %(default)s)"
    )
    parser.add_argument(
        "--context-lengths",
        type=int,
        nargs="+",
        default=list(DEFAULT_CONTEXT_LENGTHS),
        help=f"window lengths drawn per step (default: {' '.join(map(str, DEFAULT_CONTEXT_LENGTHS))})",
    )
    parser.add_argument("--patch-length", type=int, default=16)
    parser.add_argument("--patch-stride", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    parser.add_argument("--log-every", type=int, default=25, help="steps between progress lines")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for bad input, with the reason on stderr)."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if not args.data and not args.synthetic:
        print("error: pass --data PATH ... and/or --synthetic N: there is nothing to pretrain on.", file=sys.stderr)
        return 2
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    package_logger = logging.getLogger("darts_timesclip.pretraining")
    package_logger.addHandler(handler)
    level = package_logger.level
    package_logger.setLevel(logging.INFO)
    try:
        path = pretrain_backbone(
            None,
            args.output,
            args.backbone,
            data=args.data,
            synthetic=args.synthetic,
            max_steps=args.max_steps,
            batch_size=args.batch_size,
            context_lengths=args.context_lengths,
            patch_length=args.patch_length,
            patch_stride=args.patch_stride,
            objective=args.objective,
            learning_rate=args.learning_rate,
            seed=args.seed,
            checkpoint_every=args.checkpoint_every,
            log_every=args.log_every,
            device=args.device,
            command="python -m darts_timesclip.pretrain " + shlex.join(argv),
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:  # a call from another program (or a test) leaves the logger as it was
        package_logger.removeHandler(handler)
        package_logger.setLevel(level)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
