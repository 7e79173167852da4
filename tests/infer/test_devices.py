import os

import pytest

from snakebatch.infer.devices import lease_gpus, thread_environment
from snakebatch.infer.job import worker_environment
from helpers import runner_spec


def test_thread_environment():
    assert thread_environment(4) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "4",
                                     "TF_NUM_INTRAOP_THREADS": "4", "TF_NUM_INTEROP_THREADS": "4"}


def test_worker_environment_user_values_win(tmp_path):
    spec = runner_spec(str(tmp_path / "s.py"), threads_per_process=2,
                       environment_variables={"OMP_NUM_THREADS": "8", "CUDA_VISIBLE_DEVICES": "5"})
    env = worker_environment(spec, {"CUDA_VISIBLE_DEVICES": "1"})
    assert env == {"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2",
                   "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2", "CUDA_VISIBLE_DEVICES": "5"}


def test_leases_are_distinct_and_a_freed_index_is_reused(tmp_path):
    locks = str(tmp_path / "gpus")
    a = lease_gpus(1, 3, locks, environ={})
    b = lease_gpus(2, 3, locks, environ={})
    assert (a.environment, b.environment) == ({"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1,2"})
    c = lease_gpus(1, 3, locks, environ={})
    assert c.indices == () and c.environment == {"CUDA_VISIBLE_DEVICES": ""}
    assert c.warning == ("gpus_per_process is 1 but only 0 of the 3 GPU(s) (--resources gpu) are free: this "
                         "worker runs without a GPU (CUDA_VISIBLE_DEVICES is empty)")
    b.release()
    d = lease_gpus(2, 3, locks, environ={})
    assert d.environment == {"CUDA_VISIBLE_DEVICES": "1,2"}
    a.release()
    d.release()


@pytest.mark.parametrize("environ,warning", [
    ({"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0"}, None),
    ({"SLURM_JOB_ID": "7"}, "gpus_per_process is 1 but the SLURM allocation has no GPUs "
                            "(CUDA_VISIBLE_DEVICES and SLURM_JOB_GPUS are unset)"),
])
def test_slurm_allocation_is_left_alone(tmp_path, environ, warning):
    lease = lease_gpus(1, 2, str(tmp_path / "gpus"), environ=environ)
    assert (lease.environment, lease.indices, lease.warning) == ({}, (), warning)


def test_no_gpus_asked_sets_nothing(tmp_path):
    lease = lease_gpus(0, 2, str(tmp_path / "gpus"), environ={})
    assert (lease.environment, lease.warning) == ({}, None)


def test_a_gpu_lock_left_by_a_killed_job_is_taken_over(tmp_path):
    import subprocess
    import sys

    locks = str(tmp_path / "gpus")
    script = ("import sys; from snakebatch.infer.devices import lease_gpus; "
              "assert lease_gpus(1, 2, sys.argv[1], environ={}).indices == (0,)")  # ends holding GPU 0
    subprocess.run([sys.executable, "-c", script, locks], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert os.path.exists(os.path.join(locks, "gpu-0.lock"))
    lease = lease_gpus(1, 2, locks, environ={})
    assert lease.environment == {"CUDA_VISIBLE_DEVICES": "0"}
    lease.release()
    assert os.listdir(locks) == []


def test_an_empty_gpu_lock_file_of_an_older_snakebatch_is_no_obstacle(tmp_path):
    locks = tmp_path / "gpus"
    locks.mkdir()
    (locks / "gpu-0.lock").write_text("")  # the flock files snakebatch kept before
    os.utime(locks / "gpu-0.lock", (1, 1))
    lease = lease_gpus(1, 1, str(locks), environ={})
    assert lease.environment == {"CUDA_VISIBLE_DEVICES": "0"}
    lease.release()
