"""Shared fixtures: tiny datasets built on the fly."""

import uuid

import fsspec
import pytest

from helpers import write


@pytest.fixture
def dataset(tmp_path):
    """A folder ``data/`` with files f00.txt..f09.txt whose content is their number."""
    folder = tmp_path / "data"
    for i in range(10):
        write(folder / f"f{i:02d}.txt", f"{i}\n")
    return folder


@pytest.fixture
def files(dataset):
    """The ten paths of ``dataset``, in order."""
    return [str(dataset / f"f{i:02d}.txt") for i in range(10)]


@pytest.fixture
def init_log(tmp_path, monkeypatch):
    """A file the test entry scripts append a line to on each init() (``$INIT_LOG``)."""
    path = str(tmp_path / "init.log")
    monkeypatch.setenv("INIT_LOG", path)
    return path


def _service(start, tmp_path, monkeypatch, unset=()):
    """Start a service of ``services`` for one test with its own port and folder, put the
    variables that reach it in the environment, stop it at the end. Skips with the reason when it
    cannot start here; fails under CI=true (CI installs both)."""
    import os

    import services

    try:
        service = start(str(tmp_path / f"service-{start.__name__}"))
    except services.ServiceUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the object store cannot start: {exc}")
        pytest.skip(str(exc))
    for name in unset:  # the same store's other credentials, which would compete with these
        monkeypatch.delenv(name, raising=False)
    for name, value in service.env.items():
        monkeypatch.setenv(name, value)
    _forget_filesystems()  # fsspec caches instances: one made for another test's service would be reused
    try:
        yield service
    finally:
        _forget_filesystems()
        service.stop()


def _forget_filesystems():
    import fsspec

    for protocol in ("az", "s3", "gs"):
        try:
            fsspec.get_filesystem_class(protocol).clear_instance_cache()
        except ImportError:
            pass


@pytest.fixture
def azurite(tmp_path, monkeypatch):
    """Azurite's blob service (tests/services.py); AZURE_STORAGE_CONNECTION_STRING reaches it."""
    import services

    yield from _service(services.start_azurite, tmp_path, monkeypatch,
                        ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN"))


@pytest.fixture
def moto_s3(tmp_path, monkeypatch):
    """moto's S3 server (tests/services.py); AWS_* variables reach it."""
    import services

    yield from _service(services.start_moto, tmp_path, monkeypatch, ("AWS_PROFILE", "AWS_SESSION_TOKEN"))


@pytest.fixture
def gcs(tmp_path, monkeypatch):
    """gcp-storage-emulator (tests/services.py); STORAGE_EMULATOR_HOST reaches it."""
    import services

    yield from _service(services.start_gcs, tmp_path, monkeypatch, ("GOOGLE_APPLICATION_CREDENTIALS",))


# Property tests (tests/properties/, hypothesis): one settings profile, seeded, so every run tries
# the same examples. ``derandomize=True`` derives the examples from each test's own source, so CI
# and a developer's machine run the same few hundred cases; no example database is written. No
# deadline: the machine may be loaded (the suite's cost is bounded by the example counts instead).
# It lives here, not in a tests/properties/conftest.py: e2e tests import ``conftest`` by name.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "snakebatch",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.load_profile("snakebatch")


@pytest.fixture
def mem():
    """A fresh root on fsspec's memory filesystem: (fs, 'memory:///<root>'); removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/t{uuid.uuid4().hex[:8]}"
    yield fs, f"memory://{root}"
    if fs.exists(root):
        fs.rm(root, recursive=True)
