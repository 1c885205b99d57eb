"""How many CPU threads a fit uses: never more than the machine can give it right now.

torch splits every large operation across its intra-op threads and then waits for the
slowest, so a thread on a core another process holds stalls every operation (measured in
:mod:`dnnreg.cores`, which holds the rule: the usable cores that are idle now, at least
one). At tabular sizes a second thread buys little even on an idle machine
(bench/threads.py measures both). The count is taken when a fit starts and again after
every epoch, so a job started beside a running fit is noticed within an epoch; the thread
count changes only between epochs, never inside the hot loop.

``n_threads`` (an integer) overrides the rule. torch's thread count is process-wide, so it is
set for the duration of a fit or prediction and restored afterwards (:func:`thread_scope`).
"""

from __future__ import annotations

import contextlib

import torch

import dnnreg.cores as cores


class ThreadPolicy:
    """The thread count of one fit: fixed by ``n_threads``, or :func:`dnnreg.cores.auto_threads`
    re-read at every :meth:`update` (the training loop calls it between epochs)."""

    def __init__(self, n_threads="auto", max_age: float = 0.0):
        self.fixed = None if n_threads == "auto" else int(n_threads)
        self.max_age = max_age

    def choose(self) -> int:
        if self.fixed is not None:
            return self.fixed
        return cores.auto_threads(max_age=self.max_age)

    def update(self) -> None:
        n = self.choose()
        if n != torch.get_num_threads():
            torch.set_num_threads(n)

    def on_epoch_end(self, record: dict, model) -> None:
        """The training loop's hook between epochs (:mod:`dnnreg.training.loop`)."""
        self.update()
        record["threads"] = torch.get_num_threads()


@contextlib.contextmanager
def thread_scope(n_threads="auto", max_age: float = 0.0):
    """Run the body with the policy's thread count and restore torch's afterwards (the
    count is process-wide: the user's own setting must survive a fit). Yields the
    :class:`ThreadPolicy`; ``max_age`` as in :func:`dnnreg.cores.auto_threads`."""
    before = torch.get_num_threads()
    policy = ThreadPolicy(n_threads, max_age)
    try:
        policy.update()
        yield policy
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
