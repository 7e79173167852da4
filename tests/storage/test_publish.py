"""output_uri: the run's results uploaded whole, to a local folder or an object store."""

import os

import pytest

from snakebatch.errors import StorageError
from snakebatch.storage.atomic import publish_to


def local_files(tmp_path):
    paths = []
    for name, text in (("out.txt", "a\nb\n"), ("summary.json", "{}\n"), ("errors.jsonl", "")):
        path = tmp_path / "run" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        paths.append(str(path))
    return paths


def test_a_local_output_uri_gets_each_file_by_rename_and_no_temporary_is_left(tmp_path):
    written = publish_to("file://" + str(tmp_path / "pub"), local_files(tmp_path))
    assert written == [str(tmp_path / "pub" / n) for n in ("out.txt", "summary.json", "errors.jsonl")]
    assert sorted(os.listdir(tmp_path / "pub")) == ["errors.jsonl", "out.txt", "summary.json"]
    assert (tmp_path / "pub" / "out.txt").read_text() == "a\nb\n"


@pytest.mark.storage
def test_s3_output_uri_gets_one_object_per_file(moto_s3, tmp_path):
    import boto3
    import fsspec

    boto3.client("s3").create_bucket(Bucket="results")
    assert publish_to("s3://results/run1/", local_files(tmp_path)) == [
        "s3://results/run1/out.txt", "s3://results/run1/summary.json", "s3://results/run1/errors.jsonl"]
    fs = fsspec.filesystem("s3")
    assert fs.cat("results/run1/out.txt") == b"a\nb\n"
    assert sorted(fs.ls("results/run1")) == ["results/run1/errors.jsonl", "results/run1/out.txt",
                                             "results/run1/summary.json"]


@pytest.mark.storage
def test_a_missing_bucket_names_the_url(moto_s3, tmp_path):
    with pytest.raises(StorageError) as caught:
        publish_to("s3://nobucket/run1", local_files(tmp_path)[:1])
    assert str(caught.value).startswith("output_uri: 's3://nobucket/run1/out.txt' cannot be written: ")
    assert moto_s3.secret not in str(caught.value)


def test_a_local_output_uri_that_cannot_be_made_raises_a_storage_error_naming_it(tmp_path):
    (tmp_path / "pub").write_text("a file where the folder should be")
    uri = str(tmp_path / "pub" / "run")
    with pytest.raises(StorageError) as caught:
        publish_to(uri, local_files(tmp_path))
    assert str(caught.value) == f"output_uri: {uri!r} cannot be written: Not a directory (errno 20)"
