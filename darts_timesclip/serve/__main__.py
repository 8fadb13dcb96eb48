"""``python -m darts_timesclip.serve MODEL_PATH ...``"""

from darts_timesclip.serve.cli import main

raise SystemExit(main())
