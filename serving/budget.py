"""Threads per request inside a service worker.

The service runs one worker process per core, so the cores are already in use. A library that
also starts a thread per core for each request (OpenMP in scikit-learn's and LightGBM's predict,
BLAS, Polars) oversubscribes the machine under concurrency: measured on 2 cores, throughput
fell from 111 req/s at 1 client to 24-30 req/s at 8 (issue 26). `CUSTSEG_SERVING_THREADS`
(default 1) caps them; 0 leaves every library its own default. Batch jobs are not affected:
they keep every core.
"""

from __future__ import annotations

import os

THREADS = int(os.environ.get("CUSTSEG_SERVING_THREADS", "1"))
# read once, when each library loads: this module is imported before the models. OpenMP's
# setting is per thread once it runs, so only the environment reaches the request threads
# (`custseg serve` and the Bento set it for the worker processes too)
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "POLARS_MAX_THREADS",
)


def set_environment() -> None:
    """The thread variables (where not set already) for this process and those it starts:
    `custseg serve` calls it before the workers exist; importing this module does it too."""
    if THREADS > 0:
        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, str(THREADS))


set_environment()


def limit_worker() -> object | None:
    """Cap the OpenMP and BLAS thread pools of this process (keep the returned object alive)."""
    if THREADS <= 0:
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=THREADS)
