"""Which CPU cores a computation may use right now: the affinity mask, the cgroup's
quota, and the runnable tasks of other processes.

A parallel BLAS or torch operation is split across threads and then waits for the
slowest; when another process holds a core, the thread on that core runs only in the
scheduler's slices and every operation waits for it. Measured here (2 cores, another
CPU-bound process running): a one-epoch torch fit of an 8,000-row table took 21.8 s with
two threads and 1.4 s with one; the NumPy runtime predicted 20,000 rows of the default
ensemble in 8.1 s with OpenBLAS's two threads and 1.5 s with one. The rule both engines
follow is

    threads = min(cores we may use, cores idle now), at least 1,

where *cores we may use* is the CPU affinity mask and the cgroup's CPU quota (a container
limited to 1.5 CPUs gets 1), and *cores idle now* subtracts the runnable tasks the kernel
counts in ``/proc/stat`` (``procs_running``, which includes this process).

This module needs neither torch nor NumPy: the training loop
(:mod:`dnnreg.training.threads`) and the torch-free runtime
(:mod:`dnnreg.inference.runtime`) both use it.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path


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


def auto_threads(
    cores: int | None = None, others: int | None = None, *, max_age: float = 0.0
) -> int:
    """``min(usable cores, cores not taken by other runnable tasks)``, at least 1.

    Reading the machine costs about 0.5 ms (every thread's state in /proc), more than a
    one-row prediction: with ``max_age`` seconds, an answer read that recently is reused
    (predictions pass 1 s; training reads afresh between epochs).

    >>> auto_threads(cores=2, others=0), auto_threads(cores=2, others=1), auto_threads(2, 5)
    (2, 1, 1)
    """
    if cores is None and others is None and max_age > 0:
        when, n = _LAST_READ
        if time.monotonic() - when <= max_age:
            return n
    read = cores is None and others is None
    cores = usable_cores() if cores is None else cores
    others = runnable_others() if others is None else others
    n = max(1, min(cores, cores - others))
    if read:
        _LAST_READ[:] = [time.monotonic(), n]
    return n


_LAST_READ = [-float("inf"), 1]  # (monotonic time, threads) of the last reading


_CONTROLLER = None


@contextlib.contextmanager
def blas_threads(n: int):
    """Limit NumPy's BLAS to ``n`` threads inside the body, and restore it afterwards
    (``threadpoolctl``, which scikit-learn installs; without it, a no-op). The
    controller that finds the loaded BLAS libraries is built once: building it costs
    more than a small prediction."""
    global _CONTROLLER
    try:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        limit = _CONTROLLER.limit(limits=n, user_api="blas")
    except ImportError:
        limit = contextlib.nullcontext()
    with limit:
        yield
