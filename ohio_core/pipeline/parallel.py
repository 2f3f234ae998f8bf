"""Run one function over many independent items (rosbags): inline, in local processes, or on Ray.

``map_items(fn, items)`` yields an :class:`Outcome` per item as it completes. ``fn`` must be a
module-level function (picklable by reference, importable in a fresh interpreter: spawned
worker processes and Ray workers import it by name, so not a lambda, a closure or a function
defined in ``__main__``); items and return values must be picklable. On a Ray cluster every
node needs the same environment (this project and fn's module importable).

An exception raised by ``fn`` is recorded in ``Outcome.error`` and the other items go on, so a
caller can skip bad bags; KeyboardInterrupt stops the workers and propagates. Local workers die
with the process that started them, even when it is killed (SIGKILL) and runs no clean-up. Ray is
loaded only when an address is given.
"""

from __future__ import annotations

import ctypes
import itertools
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from ohio_core import lazy

CONNECT_TIMEOUT_S = 5.0   # for the reachability check of a Ray address
PR_SET_PDEATHSIG = 1      # prctl(2) option: the signal this process gets when its parent dies


@dataclass
class Outcome:
    """What ``fn`` made of one item."""

    index: int                 # position of the item in the input
    item: Any
    value: Any = None
    error: str | None = None   # "ExceptionType: message" when fn raised (value None)
    seconds: float = 0.0       # wall time of fn on this item
    error_type: str | None = None   # "ExceptionType" when fn raised

    @property
    def message(self) -> str | None:
        """The exception's message, without its type."""
        return None if self.error is None else self.error[len(self.error_type or "") + 2:]


class ParallelError(RuntimeError):
    """Parallel execution cannot start, e.g. no Ray cluster answers at the given address."""


def describe(exc: BaseException) -> str:
    """``"ExceptionType: message"`` of an exception."""
    return f"{type(exc).__name__}: {exc}"


def _failed(index: int, item: Any, exc: BaseException) -> Outcome:
    return Outcome(index, item, error=describe(exc), error_type=type(exc).__name__)


def _call(fn: Callable[[Any], Any], item: Any) -> tuple[Any, str | None, float, str | None]:
    """(value, error, seconds, error type) of ``fn(item)``; runs in the worker, so it times only fn."""
    start = time.perf_counter()
    try:
        value, error, kind = fn(item), None, None
    except Exception as exc:   # recorded per item; KeyboardInterrupt and SystemExit propagate
        value, error, kind = None, describe(exc), type(exc).__name__
    return value, error, time.perf_counter() - start, kind


def map_items(fn: Callable[[Any], Any], items: Iterable[Any], workers: int | None = None,
              ray_address: str | None = None, progress: bool = True,
              desc: str = "bags") -> Iterator[Outcome]:
    """Yield ``Outcome(index, item, ...)`` for ``fn(item)`` of every item, in completion order.

    Locally (``ray_address`` None) with ``workers`` processes (default: CPU count, at most one
    per item); one worker or one item runs inline in this process. With ``ray_address``
    ("HOST:PORT" of a running cluster's head) one Ray task of 1 CPU per item; raises
    :class:`ParallelError` when the cluster cannot be reached. At most twice as many items as
    workers (local processes or cluster CPUs) are in flight at a time.
    """
    items = list(items)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if ray_address is not None:
        runs = _run_ray(fn, items, ray_address)
    else:
        workers = min(workers or os.cpu_count() or 1, len(items))
        runs = _run_inline(fn, items) if workers <= 1 else _run_pool(fn, items, workers)
    with tqdm(total=len(items), desc=desc, unit="item", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:
        try:
            for outcome in runs:
                bar.update()
                yield outcome
        finally:
            runs.close()   # an early stop or an interrupt stops the workers too


def _run_inline(fn, items) -> Iterator[Outcome]:
    for index, item in enumerate(items):
        yield Outcome(index, item, *_call(fn, item))


def _die_with_parent(parent: int) -> None:
    """Worker initializer: SIGKILL this worker when its parent dies (Linux ``prctl``), and exit now if
    the parent died before that was set (the worker then has another parent: init or a subreaper).

    Without it a killed parent leaves its workers blocked forever on the task queue, whose write
    end they hold themselves; the multiprocessing resource tracker exits once they are gone."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    if os.getppid() != parent:
        os._exit(1)


def _run_pool(fn, items, workers: int) -> Iterator[Outcome]:
    """A spawn-context process pool; a worker that dies (crash, kill) fails the items then in
    flight with BrokenProcessPool, and a new pool takes the rest. The workers die with this
    process (see ``_die_with_parent``; Linux ties that to the thread that started them, so
    iterate in one thread that outlives the pool)."""
    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_die_with_parent, initargs=(os.getpid(),))

    todo = enumerate(items)
    pending: dict[Future, tuple[int, Any]] = {}
    pool = new_pool()
    try:
        while True:
            for index, item in itertools.islice(todo, 2 * workers - len(pending)):
                try:
                    future = pool.submit(_call, fn, item)
                except BrokenProcessPool:
                    pool.shutdown(wait=False)
                    pool = new_pool()
                    future = pool.submit(_call, fn, item)
                pending[future] = (index, item)
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index, item = pending.pop(future)
                try:
                    outcome = Outcome(index, item, *future.result())
                except Exception as exc:   # the worker died, or the value did not pickle
                    outcome = _failed(index, item, exc)
                yield outcome
        pool.shutdown(wait=True)
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())   # shutdown drops them
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()   # running items would otherwise finish first
        raise


def _connect_ray(address: str):
    """The ray module, connected to ``address``; True if this call initialized Ray."""
    ray = lazy.ray()
    if ray.is_initialized():
        return ray, False
    host, _, port = address.split("://")[-1].rpartition(":")
    if host and port.isdigit():   # fail fast: ray.init retries an unreachable address for minutes
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise ParallelError(f"cannot connect to Ray at {address}: {describe(exc)}") from exc
    try:
        ray.init(address=address, log_to_driver=False, include_dashboard=False, configure_logging=False)
    except Exception as exc:   # ConnectionError, RuntimeError, ...
        raise ParallelError(f"cannot connect to Ray at {address}: {describe(exc)}") from exc
    return ray, True


def _run_ray(fn, items, address: str) -> Iterator[Outcome]:
    """One Ray task (1 CPU) per item, on the cluster at ``address``."""
    ray, initialized = _connect_ray(address)
    pending: dict[Any, tuple[int, Any]] = {}
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise ParallelError(f"the Ray cluster at {address} has no CPUs")
        task = ray.remote(num_cpus=1)(_call)
        todo = enumerate(items)
        while True:
            for index, item in itertools.islice(todo, 2 * cpus - len(pending)):
                pending[task.remote(fn, item)] = (index, item)
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index, item = pending.pop(ref)
                try:
                    outcome = Outcome(index, item, *ray.get(ref))
                except Exception as exc:   # worker died, fn not importable there, ...
                    outcome = _failed(index, item, getattr(exc, "cause", None) or exc)
                yield outcome
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if initialized:
            ray.shutdown()
