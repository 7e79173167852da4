"""The object stores the storage tests start (tests/services.py): each answers, round-trips a
blob with the environment's credentials alone, and is gone (its PID ended) after stop()."""

import os

import pytest

import services

pytestmark = pytest.mark.storage


def test_azurite_round_trip_with_the_connection_string_from_the_environment(azurite):
    import fsspec

    fs = fsspec.filesystem("az")
    fs.mkdir("probe")
    fs.pipe("probe/dir/a b é.txt", b"hello")
    assert fs.cat("az://probe/dir/a b é.txt") == b"hello"
    assert fs.info("probe/dir/a b é.txt")["etag"]
    assert os.environ["AZURE_STORAGE_CONNECTION_STRING"].endswith(f"{azurite.endpoint};")


def test_moto_round_trip_with_aws_variables_from_the_environment(moto_s3):
    import boto3
    import fsspec

    boto3.client("s3").create_bucket(Bucket="probe")
    fs = fsspec.filesystem("s3")
    fs.pipe("probe/dir/a b é.txt", b"hello")
    assert fs.cat("s3://probe/dir/a b é.txt") == b"hello"
    assert fs.info("probe/dir/a b é.txt")["ETag"]


def test_gcs_emulator_round_trip_through_gcsfs_from_the_environment(gcs):
    import fsspec

    fs = fsspec.filesystem("gs")
    fs.mkdir("probe")
    fs.pipe("probe/dir/a b é.txt", b"hello")
    assert fs.cat("gs://probe/dir/a b é.txt") == b"hello"
    assert fs.info("probe/dir/a b é.txt")["etag"]
    assert os.environ["STORAGE_EMULATOR_HOST"] == gcs.endpoint


def test_stop_ends_the_process_it_started(tmp_path):
    try:
        service = services.start_moto(str(tmp_path / "moto"))
    except services.ServiceUnavailable as exc:
        pytest.skip(str(exc))
    pid = service.process.pid
    service.stop()
    assert service.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
