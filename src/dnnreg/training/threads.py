"""How many CPU threads a fit uses: never more than the machine can give it right now.

torch splits every large operation across its intra-op threads and then waits for the
slowest. When another process holds a core, the thread on that core runs only in the
scheduler's slices and every operation waits for it: measured here, a one-epoch fit of an
8,000-row table took 21.8 s beside a CPU-bound process with torch's default two threads,
and 1.4 s with one. At tabular sizes a second thread buys little even on an idle machine
(bench/threads.py measures both), so the rule is

    threads = min(cores we may use, cores idle now), at least 1,

where *cores we may use* is the CPU affinity mask and the cgroup's CPU quota (a container
limited to 1.5 CPUs gets 1), and *cores idle now* subtracts the runnable tasks the kernel
counts in ``/proc/stat`` (``procs_running``, which includes this process). The count is
taken when a fit starts and again after every epoch, so a job started beside a running fit
is noticed within an epoch; the thread count changes only between epochs, never inside the
hot loop.

``n_threads`` (an integer) overrides the rule. torch's thread count is process-wide, so it is
set for the duration of a fit or prediction and restored afterwards (:func:`thread_scope`).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import torch


def usable_cores() -> int:
    """Cores this process may run on: its affinity mask, capped by a cgroup CPU quota
    (``cpu.max`` in cgroup v2, ``cfs_quota_us / cfs_period_us`` in v1), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup, or ``None`` when unlimited or unknown."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 else None
    except (OSError, ValueError):
        return None


def runnable_others() -> int:
    """Runnable tasks on the machine that are not this process's threads:
    ``procs_running`` from ``/proc/stat`` minus our own threads in state R (torch's
    worker threads spin for a moment after each parallel region and count as running);
    0 where it cannot be read."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running"):
                return max(0, int(line.split()[1]) - _own_running())
    except (OSError, ValueError):
        pass
    return 0


def _own_running() -> int:
    """This process's threads the kernel has as runnable (at least the reader)."""
    running = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            # /proc/<pid>/task/<tid>/stat: "tid (comm) state ...", comm may hold spaces
            running += task.joinpath("stat").read_text().rpartition(")")[2].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return max(1, running)


def auto_threads(cores: int | None = None, others: int | None = None) -> int:
    """``min(usable cores, cores not taken by other runnable tasks)``, at least 1.

    >>> auto_threads(cores=2, others=0), auto_threads(cores=2, others=1), auto_threads(2, 5)
    (2, 1, 1)
    """
    cores = usable_cores() if cores is None else cores
    others = runnable_others() if others is None else others
    return max(1, min(cores, cores - others))


class ThreadPolicy:
    """The thread count of one fit: fixed by ``n_threads``, or :func:`auto_threads`
    re-read at every :meth:`update` (the training loop calls it between epochs)."""

    def __init__(self, n_threads="auto"):
        self.fixed = None if n_threads == "auto" else int(n_threads)

    def choose(self) -> int:
        return self.fixed if self.fixed is not None else auto_threads()

    def update(self) -> None:
        n = self.choose()
        if n != torch.get_num_threads():
            torch.set_num_threads(n)

    def on_epoch_end(self, record: dict, model) -> None:
        """The training loop's hook between epochs (:mod:`dnnreg.training.loop`)."""
        self.update()
        record["threads"] = torch.get_num_threads()


@contextlib.contextmanager
def thread_scope(n_threads="auto"):
    """Run the body with the policy's thread count and restore torch's afterwards (the
    count is process-wide: the user's own setting must survive a fit). Yields the
    :class:`ThreadPolicy`."""
    before = torch.get_num_threads()
    policy = ThreadPolicy(n_threads)
    try:
        policy.update()
        yield policy
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
