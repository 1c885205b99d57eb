"""How dnnreg tells its user something, following the conventions of scikit-learn,
LightGBM and Keras:

- **Conditions the user should act on are Python warnings** (:func:`warn`):
  :class:`DNNRegWarning` (a ``UserWarning``) for a setting that works against itself or an
  argument that is ignored, scikit-learn's ``ConvergenceWarning`` for training that
  diverged or stopped while still improving. Each message says what to change. Warnings
  can be filtered, turned into errors, or caught with ``pytest.warns``; the CLI prints
  them as ``dnnreg: warning: ...`` lines.
- **Progress is printed when asked for** (``verbose``): :func:`verbose_output` shows the
  ``dnnreg`` logger's progress lines on stderr during a fit, unless the user's own logging
  already shows them (then nothing is added and nothing is printed twice).
- **Nothing otherwise**: the ``dnnreg`` logger has a ``NullHandler`` (set in
  ``dnnreg/__init__.py``), so a library user who configured no logging sees no output, and
  no level, handler or warning filter of the process is changed behind their back.

Torch-free: the tables, the NumPy runtime and the CLI import it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings

__all__ = ["DNNRegWarning", "verbose_output", "warn", "warn_convergence"]

logger = logging.getLogger("dnnreg")


class DNNRegWarning(UserWarning):
    """A condition the user can fix (an ignored argument, options that work against each
    other, emulated hardware); the message says how."""


def warn(message: str, category: type[Warning] = DNNRegWarning) -> None:
    """``warnings.warn`` with dnnreg's default category, attributed to the first caller
    outside the dnnreg package (the user's ``fit`` line, as scikit-learn's warnings are),
    however deep inside dnnreg the condition was found."""
    warnings.warn(message, category, stacklevel=_first_outside_caller())


def warn_convergence(message: str) -> None:
    """Warn with scikit-learn's ``ConvergenceWarning`` (imported here, not at import time:
    scikit-learn takes seconds to import and the torch-free paths rarely need it)."""
    warnings.warn(message, _convergence_warning(), stacklevel=_first_outside_caller())


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _first_outside_caller() -> int:
    """The ``stacklevel``, counted from :func:`warn`'s own ``warnings.warn`` call, of the
    first frame whose file is not in the dnnreg package."""
    frame, level = sys._getframe(2), 2  # 2: the caller of warn / warn_convergence
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def _convergence_warning() -> type[Warning]:
    from sklearn.exceptions import ConvergenceWarning

    return ConvergenceWarning


def __getattr__(name: str):
    if name == "ConvergenceWarning":  # dnnreg.notices.ConvergenceWarning, lazily
        return _convergence_warning()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _shown_by_user_logging(log: logging.Logger) -> bool:
    """Whether INFO records of ``log`` already reach a real handler (not a NullHandler)
    through the user's own logging configuration."""
    if log.getEffectiveLevel() > logging.INFO:
        return False
    node = log
    while node is not None:
        if any(not isinstance(h, logging.NullHandler) for h in node.handlers):
            return True
        node = node.parent if node.propagate else None
    return False


@contextlib.contextmanager
def verbose_output(verbose: int, stream=None):
    """While the body runs with ``verbose > 0``, show the ``dnnreg`` logger's progress on
    ``stream`` (stderr): a :class:`~dnnreg.progress.ProgressHandler`, the logger at
    INFO and not propagating (so a root handler at WARNING does not print the lines a
    second time). Level, propagation and handlers are restored afterwards. Without
    ``verbose``, or when the user's logging already shows INFO records, a no-op."""
    if not verbose or _shown_by_user_logging(logger):
        yield
        return
    from dnnreg.progress import ProgressHandler

    handler = ProgressHandler(sys.stderr if stream is None else stream)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.level, logger.propagate = saved


def cli_showwarning(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` for the CLI: one ``dnnreg: warning: ...`` line, no source
    location (a user of the command line has no use for our file names)."""
    print(f"dnnreg: warning: {message}", file=sys.stderr if file is None else file)
