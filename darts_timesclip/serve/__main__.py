"""``python -m darts_timesclip.serve MODEL_PATH ...``"""

from darts_timesclip.serve.cli import main

if __name__ == "__main__":  # documentation tools import this module to inspect it
    raise SystemExit(main())
