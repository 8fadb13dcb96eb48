"""``darts-timesclip``: the package's console script (``darts-timesclip serve MODEL_PATH ...``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``darts-timesclip`` console script."""
    parser = argparse.ArgumentParser(prog="darts-timesclip", description="darts-timesclip command line")
    sub = parser.add_subparsers(dest="command", required=True)
    from darts_timesclip import serve

    serve.build_parser(sub.add_parser("serve", help="run the forecasting service for a saved TimesCLIPModel"))
    args = parser.parse_args(argv)
    return serve.serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
