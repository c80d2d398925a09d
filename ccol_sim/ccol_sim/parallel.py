"""Independent simulator episodes (recording, replay, sim-eval) spread over worker processes.

Each worker builds its own state once (a MuJoCo scene, a policy) and then runs jobs; results come back in job
order. One MuJoCo scene and one single-threaded policy keep one core busy, so on a 2-core machine two workers
halve the wall time. `workers=1` runs everything in this process (tests, debugging).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")

_state: Any = None


def default_workers(jobs: int) -> int:
    """One worker per core (at most 8: each holds a scene and, for sim-eval, a policy), never more than jobs."""
    return max(1, min(os.cpu_count() or 1, 8, jobs))


def _init(factory: Callable[..., Any], args: tuple) -> None:
    global _state
    _state = factory(*args)


def _call(fn: Callable[[Any, Any], Any], job: Any) -> Any:
    return fn(_state, job)


def run_jobs(
    factory: Callable[..., Any],
    args: tuple,
    fn: Callable[[Any, J], R],
    jobs: list[J],
    workers: int = 0,
    on_result: Callable[[list[R]], str] | None = None,
    desc: str | None = None,
) -> list[R]:
    """[fn(state, job) for job in jobs] with state = factory(*args) built once per worker process.

    factory and fn must be module-level functions (they cross process boundaries); `workers` 0 picks
    `default_workers`. `desc` shows a progress bar; `on_result(done)` returns its postfix text after each job."""
    workers = workers or default_workers(len(jobs))
    bar = None
    if desc is not None:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit="episode")
    results: dict[int, R] = {}

    def done(i: int, r: R) -> None:
        results[i] = r
        if bar is not None:
            bar.update(1)
            if on_result is not None:
                bar.set_postfix_str(on_result(list(results.values())))

    try:
        if workers <= 1:
            state = factory(*args)
            try:
                for i, job in enumerate(jobs):
                    done(i, fn(state, job))
            finally:
                if hasattr(state, "close"):
                    state.close()
        else:
            # spawn: a forked child would share the parent's GL context and torch thread pool
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(factory, args)) as pool:
                futures = {pool.submit(_call, fn, job): i for i, job in enumerate(jobs)}
                for future in as_completed(futures):
                    done(futures[future], future.result())
    finally:
        if bar is not None:
            bar.close()
    return [results[i] for i in range(len(jobs))]
