"""What a worker process gets of the machine: CPU threads and GPUs.

``thread_environment`` is the thread-pool size given to the numeric libraries of a worker
(``threads_per_process``); the variables are set in the worker's environment when it is spawned,
so they are there before numpy, TensorFlow or PyTorch is imported (the user's
``environment_variables`` win over them).

GPUs (``gpus_per_process``), as ParallelRunStep places them: each running worker gets its own
device indices in ``CUDA_VISIBLE_DEVICES``, and an index a finished worker freed is reused. Locally
the shard jobs of a run share a pool of ``--resources gpu=N`` devices (N recorded in plan.json by
the main snakemake process); a shard job holds ``results/{run}/gpus/gpu-K.lock``
(``RunLayout.gpu_lock``, a ``storage.locks.FileLock``: created with ``O_EXCL``, no ``flock``, so it
holds on NFS too) for each index K it uses, as long as it runs. A job that ends without releasing
its locks (killed) leaves their files; the next job on this host that wants index K sees their
holder's process gone and breaks the lock. The locks are never broken by age (a shard job may
hold its GPU for days). Snakemake's scheduler runs at most N / gpus_per_process shard jobs at
once, so a free index is always there; the locks make sure two running workers never share one.
Under SLURM (``SLURM_JOB_ID`` set) the allocation's devices are used as SLURM set them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

from snakebatch.storage.layout import RunLayout
from snakebatch.storage.locks import FileLock

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def thread_environment(threads: int) -> dict:
    """The environment that caps a worker's numeric libraries at ``threads`` threads (>= 1).
    PyTorch's intra-op pool follows OMP_NUM_THREADS (and MKL_NUM_THREADS)."""
    return {name: str(int(threads)) for name in THREAD_VARIABLES}


def visible_gpu_count() -> int:
    """The GPUs ``nvidia-smi -L`` lists on this machine; 0 without nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


@dataclass
class GpuLease:
    """The GPU indices one shard job holds (``indices``), the environment its worker gets
    (``environment``: CUDA_VISIBLE_DEVICES, or nothing to leave SLURM's), and why it got fewer than
    asked (``warning``, for the node log). ``release`` drops the locks (also done by the kernel
    when the process ends)."""

    indices: tuple[int, ...] = ()
    environment: dict = field(default_factory=dict)
    warning: str | None = None
    _handles: list = field(default_factory=list, repr=False)

    def release(self) -> None:
        """Remove the lock files this lease holds."""
        for lock in self._handles:
            lock.release()
        self._handles.clear()


def lease_gpus(count: int, pool_size: int | None, lock_dir: str, environ: dict | None = None) -> GpuLease:
    """Take ``count`` GPUs for one worker. ``pool_size`` is the run's ``--resources gpu=N`` (None
    when not given: the GPUs nvidia-smi lists); ``lock_dir`` is ``results/{run}/gpus``
    (``RunLayout.gpus_dir``: the lock of index K is that run's ``gpu_lock(K)``); ``environ``
    is the job's environment (default ``os.environ``). ``count == 0``: nothing is set. Under SLURM
    (SLURM_JOB_ID) the allocation's devices are left as SLURM set them. A worker that cannot get
    ``count`` free indices gets none (CUDA_VISIBLE_DEVICES empty) and a warning."""
    environ = os.environ if environ is None else environ
    if count <= 0:
        return GpuLease()
    if environ.get("SLURM_JOB_ID"):
        return GpuLease(warning=None if environ.get("CUDA_VISIBLE_DEVICES") or environ.get("SLURM_JOB_GPUS") else
                        f"gpus_per_process is {count} but the SLURM allocation has no GPUs "
                        "(CUDA_VISIBLE_DEVICES and SLURM_JOB_GPUS are unset)")
    pool = visible_gpu_count() if pool_size is None else int(pool_size)
    layout = RunLayout.of_run_file(lock_dir)
    lease = GpuLease()
    for index in range(pool):
        if len(lease.indices) == count:
            break
        lock = FileLock(layout.gpu_lock(index), stale_after_s=None)
        if not lock.try_acquire():
            continue
        lease._handles.append(lock)
        lease.indices += (index,)
    if len(lease.indices) < count:
        got = len(lease.indices)
        lease.release()
        source = "--resources gpu" if pool_size is not None else "nvidia-smi"
        return GpuLease(environment={"CUDA_VISIBLE_DEVICES": ""},
                        warning=f"gpus_per_process is {count} but only {got} of the {pool} GPU(s) ({source}) "
                                "are free: this worker runs without a GPU (CUDA_VISIBLE_DEVICES is empty)")
    lease.environment = {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in lease.indices)}
    return lease
