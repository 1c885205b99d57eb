"""Parameter and input checks shared by the library and the CLI.

Every message follows one format: ``"<name> must <rule>, got <name>=<value>"``, plus the
fix where there is one, so the CLI can print it as a single line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` if none is close.

    Examples
    --------
    >>> did_you_mean("hiden_layer_sizes", ["hidden_layer_sizes", "dropout"])
    " (did you mean 'hidden_layer_sizes'?)"
    >>> did_you_mean("Price", ["price", "size"])
    " (did you mean 'price'?)"
    >>> did_you_mean("zzz", ["dropout"])
    ''
    """
    choices = [str(c) for c in choices]
    same_but_case = [c for c in choices if c.lower() == str(word).lower()]
    close = same_but_case or difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_choice(name: str, value, choices: Iterable[str]) -> str | None:
    """Return an error message if ``value`` is not one of ``choices``, else ``None``."""
    choices = list(choices)
    if value in choices:
        return None
    return f"{name} must be one of {choices}, got {name}={value!r}" + did_you_mean(
        str(value), choices
    )


def check_number(
    name: str, value, *, low=None, high=None, integer=False, low_inclusive=True, high_inclusive=True
) -> str | None:
    """Return an error message if ``value`` is not a number in the given range, else ``None``."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        try:  # numpy scalars are fine
            import numpy as np

            ok_type = isinstance(value, np.integer) or (
                not integer and isinstance(value, np.floating)
            )
        except ImportError:  # pragma: no cover
            ok_type = False
        if isinstance(value, bool) or not ok_type:
            return f"{name} must be {kind}, got {name}={value!r}"
    if value != value:  # NaN
        return f"{name} must be {kind}, got {name}={value!r}"
    lo_bad = low is not None and (value < low if low_inclusive else value <= low)
    hi_bad = high is not None and (value > high if high_inclusive else value >= high)
    if lo_bad or hi_bad:
        lo = "" if low is None else ("[" if low_inclusive else "(") + f"{low}"
        hi = "" if high is None else f"{high}" + ("]" if high_inclusive else ")")
        rng = f"in {lo or '(-inf'}, {hi or 'inf)'}"
        return f"{name} must be {kind} {rng}, got {name}={value!r}"
    return None


def raise_all(errors: Iterable[str | None], exc: type[Exception] = ValueError) -> None:
    """Raise one ``exc`` listing every non-empty message, so users fix them all at once."""
    errors = [e for e in errors if e]
    if errors:
        raise exc("; ".join(errors))
