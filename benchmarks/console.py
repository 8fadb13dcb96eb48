"""Console output of the command-line entry points: our own lines and real problems, no third-party chatter.

``configure_console`` is for ``benchmarks.cli.main()`` only (through :func:`console_session`, which puts every
logger, handler and warning filter back as it found them when the command returns); importing a module of this
package configures nothing. It

- installs one handler (on the root logger) that writes ``HH:MM:SS message`` for the suite's own INFO lines
  (the per-epoch progress of ``benchmarks.callbacks.EpochLog`` among them) and ``HH:MM:SS LEVEL name: message``
  for warnings and errors from anywhere;
- drops everything below WARNING that does not come from the suite's own loggers (unless ``verbose``):
  "GPU available", "TPU available", the litlogger tip, "Loading `train_dataloader` ..." and "`Trainer.fit`
  stopped" are Lightning's INFO messages. The filter sits on the handler, so it holds whatever levels a
  later import of Lightning sets (``import pytorch_lightning`` resets its logger to INFO);
- routes Lightning's loggers through that one handler: ``pytorch_lightning`` adds a stderr handler of its
  own when it is imported before the root logger has one, the ``lightning`` umbrella package (imported by
  neuralforecast, through ray) always does, and with a root handler as well every message prints twice;
- ignores the known-harmless third-party warnings of ``KNOWN_HARMLESS_WARNINGS``, each by message, category
  and emitting module, so that every other warning still shows.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import TextIO

#: The suite's own loggers: their INFO lines are the console's content.
OWN_LOGGER = "benchmarks"

#: The library's progress loggers that the suite's commands show too (pretraining, in ``benchmarks transfer``).
SHOWN_LIBRARY_LOGGERS = ("darts_timesclip.pretraining",)

#: Loggers of Lightning (both distributions) and Darts, kept at WARNING unless ``verbose``.
THIRD_PARTY_LOGGERS = (
    "pytorch_lightning",
    "lightning",
    "lightning.pytorch",
    "lightning_fabric",
    "lightning.fabric",
    "darts",
)

#: Lightning packages whose import may add a stderr handler of their own (see their ``__init__.py``).
LIGHTNING_PACKAGES = ("pytorch_lightning", "lightning_fabric", "lightning", "lightning.pytorch", "lightning.fabric")

KNOWN_HARMLESS_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    # torch deprecated `LeafSpec`; Lightning's `_pytree` helper still builds one in every fit
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"(pytorch_lightning|lightning\.pytorch)\.utilities\._pytree",
    ),
    # Lightning checks every dataloader's length; Darts fits without a validation series with an empty list
    (
        r"Total length of `list` across ranks is zero",
        UserWarning,
        r"(pytorch_lightning|lightning\.pytorch)\.utilities\.data",
    ),
)
"""``(message regex, category, module regex)`` of each warning ``configure_console`` ignores."""

_HANDLER_MARK = "_benchmarks_console"


class ConsoleFormatter(logging.Formatter):
    """``HH:MM:SS message`` for the suite's INFO lines, ``HH:MM:SS LEVEL name: message`` for the rest."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
        self._own = logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        if is_own(record.name) and record.levelno == logging.INFO:
            return self._own.format(record)
        return super().format(record)


def is_own(name: str) -> bool:
    """Whether a logger's INFO lines are the console's content (``benchmarks`` or a shown library logger)."""
    return any(name == own or name.startswith(own + ".") for own in (OWN_LOGGER, *SHOWN_LIBRARY_LOGGERS))


class OwnInfoOnly(logging.Filter):
    """Let through the suite's own records, and warnings and errors from anywhere."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or is_own(record.name)


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to ``sys.stderr`` as it is at each message.

    Binding the stream at construction would keep writing to a stream that pytest's capture, or the
    caller, has since replaced.
    """

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # `StreamHandler.__init__` assigns it
        pass


def console_handlers() -> list[logging.Handler]:
    """The handlers ``configure_console`` has put on the root logger (one at most)."""
    return [h for h in logging.getLogger().handlers if getattr(h, _HANDLER_MARK, False)]


def ignore_known_warnings() -> None:
    """Ignore each warning of ``KNOWN_HARMLESS_WARNINGS`` (message, category and module must all match)."""
    for message, category, module in KNOWN_HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def _settle_lightning(import_now: bool) -> None:
    """Take the handlers off Lightning's loggers so that their records reach the root handler only.

    With ``import_now``, first import every installed Lightning package: the ``lightning`` umbrella adds its
    handler at import whatever the root logger has, so one imported later (by neuralforecast, mid-run)
    would print each of its messages twice.
    """
    if import_now:
        for name in LIGHTNING_PACKAGES:
            try:
                importlib.import_module(name)
            except ImportError:  # one distribution is enough; the other is optional
                continue
    for name in LIGHTNING_PACKAGES:
        package_logger = logging.getLogger(name)
        for own_handler in [h for h in package_logger.handlers if type(h) is logging.StreamHandler]:
            package_logger.removeHandler(own_handler)
        package_logger.propagate = True


def configure_console(verbose: bool = False, import_lightning: bool = True) -> logging.Handler:
    """Set up the console of a command-line run; call it once at the start of a ``main()``.

    Calling it again (tests run several ``main()`` s in one process) replaces the handler instead of
    adding a second one.

    Parameters
    ----------
    verbose
        Also show Lightning's and Darts' INFO messages (devices, dataset sizes, the end of each fit).
        Default: ``False``.
    import_lightning
        Import Lightning now, so that no later import adds a handler of its own. Costs the import of torch:
        pass ``False`` for commands that train nothing (``list``, ``report``). Default: ``True``.

    Returns
    -------
    logging.Handler
        The console handler on the root logger.
    """
    root = logging.getLogger()
    for handler in console_handlers():
        root.removeHandler(handler)
    handler = _StderrHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(ConsoleFormatter())
    if not verbose:
        handler.addFilter(OwnInfoOnly())
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    for name in (OWN_LOGGER, *SHOWN_LIBRARY_LOGGERS):
        logging.getLogger(name).setLevel(logging.INFO)

    _settle_lightning(import_lightning)
    # after the imports: each of them sets its package logger to INFO
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    ignore_known_warnings()
    return handler


@contextlib.contextmanager
def console_session(verbose: bool = False, import_lightning: bool = True) -> Iterator[logging.Handler]:
    """:func:`configure_console` for the length of a command: afterwards the root logger's handlers and level, the
    level, handlers and propagation of every logger it touches, and the warning filters are as they were.

    A command run from a test, or from another program, leaves the process's logging as it found it (a Lightning
    package first imported during the command loses the handler its import added, as it would under the command).

    Parameters
    ----------
    verbose, import_lightning
        As :func:`configure_console`'s.

    Yields
    ------
    logging.Handler
        The console handler.
    """
    root = logging.getLogger()
    names = (OWN_LOGGER, *SHOWN_LIBRARY_LOGGERS, *THIRD_PARTY_LOGGERS, *LIGHTNING_PACKAGES)
    saved = {name: (lg.level, list(lg.handlers), lg.propagate) for name in names for lg in [logging.getLogger(name)]}
    root_state = (root.level, list(root.handlers))
    with warnings.catch_warnings():
        try:
            yield configure_console(verbose=verbose, import_lightning=import_lightning)
        finally:
            root.setLevel(root_state[0])
            root.handlers[:] = root_state[1]
            for name, (level, handlers, propagate) in saved.items():
                named = logging.getLogger(name)
                named.setLevel(level)
                named.handlers[:] = handlers
                named.propagate = propagate
