"""The executors of a sweep: local, or each job a Ray task (``python -m benchmarks <study> ... --executor ray``).

Every study runs on one of them. The local executor (:func:`benchmarks.runner.run_sweep`) runs one job
after another in this process. :func:`run_sweep_ray` hands every unfinished job to Ray instead, on a local Ray
instance or on an existing cluster (``--ray-address``), each job a task that reserves ``--cpus-per-job`` CPUs and
``--gpus-per-job`` GPUs. A task prepares its job's input itself and calls the same job function as the local
executor; the driver (this process) writes each result, as soon as its task has finished, to the same
``<output>/runs/<run_id>.json`` with the same atomic write. Result files, resuming and the report are
therefore the same whichever executor ran the jobs.

Workers need what a job needs: this repository importable (the driver puts its root on the workers'
``PYTHONPATH``, so on a cluster the repository must sit at the same path on every node, or the package be
installed there) and the data directory at the same path (a shared filesystem, or copies). Ray is imported
only here, and only when the Ray executor runs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import socket
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.registry import find_file, get_spec
from benchmarks.runner import (
    JobRunner,
    RunSettings,
    SweepJob,
    SweepSummary,
    restored_environment,
    run_job,
    save_result,
    split_finished,
    torch_threads,
)

logger = logging.getLogger(__name__)

#: The repository root, which holds the ``benchmarks`` package; put on the workers' ``PYTHONPATH``.
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Seconds to wait, after cancelling the running tasks, for those that finished meanwhile.
CANCEL_GRACE_SECONDS = 10.0


class JobFailedError(RuntimeError):
    """A job of a Ray sweep failed (raised when the sweep does not keep going)."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how the Ray executor runs its tasks.

    Parameters
    ----------
    address
        Address of a running Ray cluster to join (``auto``, ``HOST:PORT``, ``ray://HOST:10001``);
        ``None`` starts a local Ray instance (ignoring ``$RAY_ADDRESS``), shut down when the sweep ends.
    cpus_per_job
        CPUs each task reserves (Ray also sets the task's ``OMP_NUM_THREADS`` from it).
    gpus_per_job
        GPUs each task reserves; a fraction lets jobs share a GPU.
    num_cpus
        CPUs of a local instance; ``None``: as many as Ray detects on the machine.
    max_retries
        How often a task is rerun when its worker dies (killed, out of memory, node lost). A job that
        raises is not retried.
    """

    address: str | None = None
    cpus_per_job: float = 1.0
    gpus_per_job: float = 0.0
    num_cpus: int | None = None
    max_retries: int = 2


def import_ray() -> ModuleType:
    """Import Ray, or explain how to install it.

    Raises
    ------
    ImportError
        Naming ``--executor ray`` and the ``benchmark`` extra, when Ray is not installed.
    """
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "`--executor ray` needs Ray, which the `benchmark` extra installs: "
            "pip install 'darts-timesclip[benchmark]' (or pip install 'ray')."
        ) from err
    return ray


def init_ray(options: RayOptions) -> None:
    """Start a local Ray instance, or join the cluster at ``options.address``, quietly.

    The workers get this repository's root (and this process's ``PYTHONPATH``) on their ``PYTHONPATH``,
    and ``$DARTS_TIMESCLIP_DATA`` when it is set here.

    Parameters
    ----------
    options
        The executor's options.
    """
    ray = import_ray()
    python_path = [str(REPO_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env_vars = {"PYTHONPATH": os.pathsep.join(dict.fromkeys(python_path))}
    if os.environ.get("DARTS_TIMESCLIP_DATA"):
        env_vars["DARTS_TIMESCLIP_DATA"] = os.environ["DARTS_TIMESCLIP_DATA"]
    common: dict[str, Any] = {
        "runtime_env": {"env_vars": env_vars},
        "log_to_driver": False,  # workers' output stays in Ray's session logs; failures come back as errors
        "logging_level": logging.WARNING,
    }
    if options.address is None:
        # `address="local"`: a new instance even when $RAY_ADDRESS names a cluster
        ray.init(address="local", num_cpus=options.num_cpus, include_dashboard=False, **common)
    else:
        ray.init(address=options.address, **common)


@contextlib.contextmanager
def ray_session(options: RayOptions) -> Iterator[None]:
    """:func:`init_ray` for the length of a block, then ``ray.shutdown()``; the environment variables that
    ``ray.init`` sets in this process (``PYTHONBREAKPOINT``, ``RAY_USAGE_STATS_ENABLED``, ...) are put back.

    Parameters
    ----------
    options
        The executor's options.
    """
    ray = import_ray()
    with restored_environment(None):
        init_ray(options)
        try:
            yield
        finally:
            ray.shutdown()


def _run_remote(job: SweepJob, settings: RunSettings, job_runner: JobRunner) -> tuple[dict[str, Any], float, str]:
    """The body of a Ray task: prepare the job's input, run the job; the result, seconds taken and host."""
    start = time.perf_counter()
    with torch_threads(settings.torch_threads), restored_environment():
        result = job_runner(job, job.prepare(settings.data_dir), settings)
    return result, time.perf_counter() - start, socket.gethostname()


def _capacity(ray: ModuleType, options: RayOptions) -> int:
    """How many tasks of ``options``' size the cluster's resources hold at once."""
    resources = ray.cluster_resources()
    fits = [math.floor(resources.get("CPU", 0.0) / options.cpus_per_job + 1e-9)]
    if options.gpus_per_job > 0:
        fits.append(math.floor(resources.get("GPU", 0.0) / options.gpus_per_job + 1e-9))
    return max(0, min(fits))


def _failure(ray: ModuleType, err: BaseException) -> tuple[BaseException, str]:
    """The error a task ended with (a job's own exception, or Ray's), and its traceback text if any."""
    if isinstance(err, ray.exceptions.RayTaskError):
        return err.cause, re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # the worker's traceback, no colour codes
    return err, ""


def run_sweep_ray(
    jobs: Sequence[SweepJob],
    settings: RunSettings,
    options: RayOptions | None = None,
    job_runner: JobRunner = run_job,
    keep_going: bool = False,
) -> SweepSummary:
    """Run every job that has no finished result file yet as a Ray task.

    Uses the Ray instance this process is connected to when there is one; otherwise starts one (or joins
    ``options.address``) with :func:`init_ray` and shuts it down at the end. At most as many tasks as the
    cluster's resources hold run at a time; the driver writes each result file as its task finishes.

    Parameters
    ----------
    jobs
        The sweep.
    settings
        Run settings. A relative ``data_dir`` is made absolute; every worker must find the files at that
        path (or, without ``data_dir``, where ``$DARTS_TIMESCLIP_DATA`` or the registry's default points).
    options
        Where and how tasks run (default: a local instance, one CPU per job).
    job_runner
        Function that runs one job; it runs in the workers, so it must be importable there (a module-level
        function).
    keep_going
        Log a failing job and continue. Otherwise the first failure cancels the running tasks (those that
        finish meanwhile are still written) and raises.

    Returns
    -------
    SweepSummary
        Completed, skipped and failed run ids.

    Raises
    ------
    JobFailedError
        Without ``keep_going``, when a job fails; it names the job and the error.
    FileNotFoundError
        If a dataset's file is not found here (checked before Ray starts).
    ImportError
        If Ray is not installed.
    """
    options = options or RayOptions()
    pending, skipped = split_finished(jobs, settings.output_dir)
    if not pending:
        return SweepSummary((), tuple(skipped), ())
    for dataset in dict.fromkeys(name for job in pending for name in job.datasets):
        find_file(get_spec(dataset), settings.data_dir)  # fail here, with the registry's message
    if settings.data_dir is not None:
        settings = replace(settings, data_dir=Path(settings.data_dir).resolve())
    ray = import_ray()
    owned = not ray.is_initialized()
    if not owned:
        logger.info("Using the Ray instance this process is already connected to.")
        return _drive(ray, pending, skipped, settings, options, job_runner, keep_going, owned)
    with ray_session(options):
        return _drive(ray, pending, skipped, settings, options, job_runner, keep_going, owned)


def _drive(
    ray: ModuleType,
    pending: list[SweepJob],
    skipped: list[str],
    settings: RunSettings,
    options: RayOptions,
    job_runner: JobRunner,
    keep_going: bool,
    owned: bool,
) -> SweepSummary:
    """Submit, collect and write: the body of :func:`run_sweep_ray` once Ray is up."""
    capacity = _capacity(ray, options)
    need = f"{options.cpus_per_job:g} CPU(s) and {options.gpus_per_job:g} GPU(s)"
    have = {key: value for key, value in ray.cluster_resources().items() if key in ("CPU", "GPU")}
    if capacity < 1:
        if owned and options.address is None:
            raise ValueError(f"A job needs {need} but the local Ray instance has {have}.")
        logger.warning("A job needs %s; the cluster has %s now: the jobs wait for resources.", need, have)
    logger.info("Ray: %d job(s), %s each, up to %d at a time on %s.", len(pending), need, max(1, capacity), have)
    task = ray.remote(
        num_cpus=options.cpus_per_job,
        num_gpus=options.gpus_per_job,
        max_retries=options.max_retries,
        retry_exceptions=False,  # a job's own exception is final; a dead worker is retried
    )(_run_remote)
    queue = deque(pending)
    running: dict[Any, SweepJob] = {}
    completed: list[str] = []
    failed: list[str] = []
    first_failure: tuple[SweepJob, BaseException] | None = None

    def counts() -> str:
        return f"[{len(completed)} done / {len(running)} running / {len(failed)} failed / {len(queue)} pending]"

    def collect(ref: Any, job: SweepJob) -> None:
        nonlocal first_failure
        try:
            result, seconds, host = ray.get(ref)
        except Exception as err:  # the job raised, or its worker died more often than retried
            cause, trace = _failure(ray, err)
            failed.append(job.run_id)
            first_failure = first_failure or (job, cause)
            logger.error(
                "%s %s (%s) failed: %s: %s%s",
                counts(),
                job.describe(),
                job.run_id,
                type(cause).__name__,
                cause,
                f"\n{trace}" if trace else "",
            )
            return
        metrics = save_result(settings.output_dir, job, result)
        completed.append(job.run_id)
        logger.info("%s %s done in %.0fs on %s: %s", counts(), job.describe(), seconds, host, metrics)

    try:
        while queue or running:
            if first_failure is not None and not keep_going:
                break
            limit = max(1, _capacity(ray, options))
            while queue and len(running) < limit:
                job = queue.popleft()
                running[task.remote(job, settings, job_runner)] = job
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                collect(ref, running.pop(ref))
    finally:
        if running:  # a failure without keep_going, or the driver interrupted: stop the rest
            for ref in running:
                ray.cancel(ref, force=True)
            # a task may have finished before its cancellation arrived: keep its result
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=CANCEL_GRACE_SECONDS)
            for ref in ready:
                job = running.pop(ref)
                try:
                    result, _, _ = ray.get(ref)
                except Exception:  # cancelled (or failed): nothing to keep
                    continue
                metrics = save_result(settings.output_dir, job, result)
                completed.append(job.run_id)
                logger.info("%s %s finished before its cancellation: %s", counts(), job.describe(), metrics)
    if first_failure is not None and not keep_going:
        job, cause = first_failure
        raise JobFailedError(
            f"{job.describe()} ({job.run_id}) failed: {type(cause).__name__}: {cause} [{len(completed)} job(s) "
            f"written, {len(queue)} not started; `--keep-going` runs the rest]"
        ) from cause
    return SweepSummary(tuple(completed), tuple(skipped), tuple(failed))
