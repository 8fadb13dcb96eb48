"""Saved models that load wherever the package is installed, and load errors that name their cause.

pandas 3 stores strings with pyarrow where pyarrow is installed (it arrives with ray or neuralforecast, for example),
and a pickled ``TimeSeries`` then refers to pyarrow: a model saved in a full development environment would not load
in a slim serving one (the wheel and the ``serve`` extra), where Darts' safe loader reports the missing module as a
function that "is not allow-listed". :func:`portable_pandas_strings` makes a save write such strings in pandas' own
(python) string storage, which loads with or without pyarrow and comes back as the same ``str`` dtype.
"""

from __future__ import annotations

import copyreg
import importlib.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_LOCK = threading.Lock()


def _arrow_string_array_types() -> tuple[type, ...]:
    import pandas as pd

    return tuple(t for t in (getattr(pd.arrays, "ArrowStringArray", None),) if t is not None)


def _reduce_as_python_strings(array: Any) -> tuple[Any, ...]:
    """Pickle an arrow-backed string array as the python-backed array of the same values and missing-value marker."""
    import pandas as pd

    return array.astype(pd.StringDtype("python", na_value=array.dtype.na_value)).__reduce__()


@contextmanager
def portable_pandas_strings() -> Iterator[None]:
    """Within the block, pickling writes pandas' pyarrow-backed string arrays as python-backed ones.

    The reducer is registered in ``copyreg.dispatch_table`` for the block only (under a lock: two saves at once
    share one registration) and removed afterwards, whatever happened.
    """
    types = _arrow_string_array_types()
    with _LOCK:
        previous = {t: copyreg.dispatch_table.get(t) for t in types}
        for t in types:
            copyreg.dispatch_table[t] = _reduce_as_python_strings
        try:
            yield
        finally:
            for t, reducer in previous.items():
                if reducer is None:
                    copyreg.dispatch_table.pop(t, None)
                else:
                    copyreg.dispatch_table[t] = reducer


def missing_module_cause(error: BaseException, path: str) -> ImportError | None:
    """An ``ImportError`` naming the real cause where loading ``path`` failed for want of pyarrow, else ``None``.

    Darts' restricted unpickler cannot tell "not allowed" from "not installed": a file that refers to pyarrow, read
    where pyarrow is missing, fails with "``pyarrow.lib._restore_array`` is not allow-listed".
    """
    if "pyarrow" not in str(error) or importlib.util.find_spec("pyarrow") is not None:
        return None
    return ImportError(
        f"`{path}` stores pandas strings with pyarrow (it was saved by darts-timesclip 0.2 or earlier where pyarrow "
        "is installed), and this environment has no pyarrow. Install it to load the file (`pip install pyarrow`); "
        "saving the model again then writes a file that loads without pyarrow."
    )
