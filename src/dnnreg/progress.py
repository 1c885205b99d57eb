"""Training progress on stderr: a bar that redraws in place on a terminal, plain lines
when stderr is a file or a pipe (logs stay greppable). The training loop logs one line
per epoch with its numbers attached (``extra={"progress": ...}``); this handler decides
how to show them."""

from __future__ import annotations

import logging

BAR = 24


def format_bar(p: dict) -> str:
    """``[█████·····] epoch 12/60  train_loss 0.2100  val_rmse 0.5012  12.4s  ETA 49s``.

    >>> format_bar({"epoch": 1, "max_iter": 4, "seconds": 2.0, "values": {"loss": 0.5}})
    '[██████··················] epoch 1/4  loss 0.5000  2.0s  ETA 6s'
    """
    done = int(BAR * p["epoch"] / p["max_iter"])
    eta = p["seconds"] / p["epoch"] * (p["max_iter"] - p["epoch"])
    values = "  ".join(f"{k} {v:.4f}" for k, v in p["values"].items())
    return (
        f"[{'█' * done}{'·' * (BAR - done)}] epoch {p['epoch']}/{p['max_iter']}  {values}  "
        f"{p['seconds']:.1f}s  ETA {eta:.0f}s"
    )


class ProgressHandler(logging.StreamHandler):
    """A bar redrawn with a carriage return on a terminal; plain lines elsewhere. Any
    other message first ends the bar's line, so nothing is overwritten."""

    def __init__(self, stream):
        super().__init__(stream)
        self.setFormatter(logging.Formatter("%(message)s"))
        self._bar_open = False

    def emit(self, record):
        progress = getattr(record, "progress", None)
        is_tty = getattr(self.stream, "isatty", lambda: False)()
        try:
            if progress is not None and is_tty:
                self.stream.write("\r" + format_bar(progress) + "\033[K")
                self._bar_open = progress["epoch"] < progress["max_iter"]
                if not self._bar_open:
                    self.stream.write("\n")
                self.flush()
                return
            if self._bar_open:
                self.stream.write("\n")
                self._bar_open = False
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)
            return
        super().emit(record)
