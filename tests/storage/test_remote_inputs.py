"""Inputs by URL against real object stores (Azurite for az:// and abfs://, moto for s3://):
listing, change identity, downloads, and the adlfs pitfalls (a blob next to a longer name that
starts with it, prefixes with and without a trailing slash, names with spaces and non-ASCII)."""

import os

import pytest

from snakebatch.settings.config import ConfigError, PartitionSpec, check_storage_options
from snakebatch.errors import DatasetError
from snakebatch.kinds import Cache, MaterialiseError, get_kind

pytestmark = pytest.mark.storage
FILES = get_kind("file")
NAMES = ["a b.png", "x.png", "x.png.1", "zé ü.png"]


def spec(paths, size=2, **overrides):
    values = dict(run_name="t", paths=tuple(paths), pattern=None, mini_batch_size=size, shard_count=1)
    values.update(overrides)
    return PartitionSpec(**values)


@pytest.fixture
def az_data(azurite):
    import fsspec

    fs = fsspec.filesystem("az")
    fs.mkdir("sampledata")
    for i, name in enumerate(NAMES):
        fs.pipe(f"sampledata/mnist/{name}", f"content {i}".encode())
    fs.pipe("sampledata/other/y.png", b"elsewhere")
    return fs


@pytest.fixture
def s3_data(moto_s3):
    import boto3
    import fsspec

    boto3.client("s3").create_bucket(Bucket="sampledata")
    fs = fsspec.filesystem("s3")
    for i, name in enumerate(NAMES):
        fs.pipe(f"sampledata/mnist/{name}", f"content {i}".encode())
    return fs


@pytest.mark.parametrize("root", ["az://sampledata/mnist/", "az://sampledata/mnist"])
def test_an_azure_prefix_lists_every_blob_once_sorted_with_its_etag(az_data, root):
    items = list(FILES.list(spec([root])))
    assert [i.path for i in items] == [f"az://sampledata/mnist/{n}" for n in NAMES]
    assert [i.size for i in items] == [9, 9, 9, 9]
    assert all(i.ukey.startswith("etag:0x") for i in items)


def test_abfs_names_the_items_with_its_own_protocol(az_data):
    assert [i.path for i in FILES.list(spec(["abfs://sampledata/mnist/"]))] == \
        [f"abfs://sampledata/mnist/{n}" for n in NAMES]


def test_a_blob_next_to_a_longer_name_is_listed_alone(az_data):
    assert [i.path for i in FILES.list(spec(["az://sampledata/mnist/x.png"]))] == ["az://sampledata/mnist/x.png"]


def test_a_glob_and_a_pattern_over_blobs(az_data):
    assert [i.path for i in FILES.list(spec(["az://sampledata/*/x.png*"]))] == \
        ["az://sampledata/mnist/x.png", "az://sampledata/mnist/x.png.1"]
    assert [i.path for i in FILES.list(spec(["az://sampledata/"], pattern="*.png"))] == \
        ["az://sampledata/mnist/a b.png", "az://sampledata/mnist/x.png", "az://sampledata/mnist/zé ü.png",
         "az://sampledata/other/y.png"]


def test_s3_prefix_lists_like_azure(s3_data):
    items = list(FILES.list(spec(["s3://sampledata/mnist/"])))
    assert [i.path for i in items] == [f"s3://sampledata/mnist/{n}" for n in NAMES]
    assert all(i.ukey.startswith("etag:") for i in items)


@pytest.fixture
def gs_data(gcs):
    import fsspec

    fs = fsspec.filesystem("gs")
    fs.mkdir("sampledata")
    for i, name in enumerate(NAMES):
        fs.pipe(f"sampledata/mnist/{name}", f"content {i}".encode())
    return fs


def test_a_gcs_prefix_lists_like_azure_with_the_objects_etags(gs_data):
    items = list(FILES.list(spec(["gs://sampledata/mnist/"])))
    assert [i.path for i in items] == [f"gs://sampledata/mnist/{n}" for n in NAMES]
    assert [i.size for i in items] == [9, 9, 9, 9]
    assert [i.ukey for i in items] == [f"etag:{gs_data.info('sampledata/mnist/' + n)['etag']}" for n in NAMES]


@pytest.mark.parametrize("store", ["az", "s3", "gs"])
def test_materialise_downloads_each_blob_into_the_cache_folder(store, request, tmp_path):
    request.getfixturevalue(f"{store}_data")
    batches = FILES.mini_batches(FILES.list(spec([f"{store}://sampledata/mnist/"])), spec([], size=4))
    paths = FILES.materialise(batches[0], {}, Cache(folder=str(tmp_path / "dl")))
    assert [os.path.basename(p) for p in paths] == NAMES
    assert all(p.startswith(str(tmp_path / "dl")) for p in paths)
    assert [open(p).read() for p in paths] == [f"content {i}" for i in range(4)]


def test_a_missing_prefix_and_a_missing_container_name_the_url(azurite):
    import fsspec

    fsspec.filesystem("az").mkdir("emptycontainer")
    with pytest.raises(DatasetError) as caught:
        list(FILES.list(spec(["az://emptycontainer/nothing/"])))
    assert str(caught.value) == "input.path: 'az://emptycontainer/nothing/' does not exist"
    with pytest.raises(DatasetError) as caught:
        list(FILES.list(spec(["az://nosuchcontainer/x/"])))
    assert str(caught.value) == "input.path: 'az://nosuchcontainer/x/' does not exist"


def test_a_blob_deleted_after_listing_fails_alone_and_all_deleted_fail_the_mini_batch(az_data, tmp_path):
    batches = FILES.mini_batches(FILES.list(spec(["az://sampledata/mnist/"])), spec([], size=4))
    az_data.rm("sampledata/mnist/x.png")
    cache = Cache(folder=str(tmp_path / "dl"))
    paths = FILES.materialise(batches[0], {}, cache)
    assert list(paths.failed) == [1]
    assert paths.failed[1].startswith("DownloadError: input file 'az://sampledata/mnist/x.png' cannot be "
                                      "downloaded: ")
    assert [os.path.basename(p) for p in paths] == NAMES
    FILES.release(paths, cache)  # the copies of a done mini-batch go
    assert [f for _, _, files in os.walk(tmp_path / "dl") for f in files] == []
    az_data.rm("sampledata/mnist/", recursive=True)
    with pytest.raises(MaterialiseError) as caught:
        FILES.materialise(batches[0], {}, cache)
    assert str(caught.value).startswith("input file 'az://sampledata/mnist/a b.png' cannot be downloaded: ")


@pytest.mark.parametrize("options, key, hint", [
    ({"account_key": "k"}, "account_key", "AZURE_STORAGE_ACCOUNT_KEY"),
    ({"sas_token": "t"}, "sas_token", "AZURE_STORAGE_SAS_TOKEN"),
    ({"connection_string": "c"}, "connection_string", "AZURE_STORAGE_CONNECTION_STRING"),
    ({"secret": "s"}, "secret", "AWS_SECRET_ACCESS_KEY"),
    ({"key": "k"}, "key", "AWS_ACCESS_KEY_ID"),
    ({"client_kwargs": {"aws_secret_access_key": "s"}}, "client_kwargs.aws_secret_access_key",
     "AWS_SECRET_ACCESS_KEY"),
])
def test_secret_storage_options_are_refused_naming_the_key_and_the_variable(options, key, hint):
    with pytest.raises(ConfigError) as caught:
        check_storage_options(options)
    assert str(caught.value) == (f"config key 'input.storage_options.{key}': looks like a secret, and "
                                 "storage_options are recorded in plain text (job commands, .snakemake/); "
                                 f"set the environment variable {hint} instead")


def test_harmless_storage_options_pass():
    check_storage_options({"account_name": "devstoreaccount1", "anon": False,
                           "client_kwargs": {"endpoint_url": "http://127.0.0.1:1", "region_name": "us-east-1"}})


# ---------------------------------------------------------------------- models and side inputs
def test_fetch_downloads_a_prefix_or_an_object_once_per_version(az_data, tmp_path):
    from snakebatch.storage.locations import fetch, remote_fingerprint

    folder = str(tmp_path / "res")
    model = fetch("az://sampledata/mnist/", folder)
    assert os.path.basename(model) == "mnist"
    assert sorted(os.listdir(model)) == NAMES
    assert open(os.path.join(model, "x.png.1")).read() == "content 2"
    assert fetch("az://sampledata/mnist/", folder) == model  # same etags: the same copy
    single = fetch("az://sampledata/other/y.png", folder)
    assert open(single).read() == "elsewhere" and os.path.basename(single) == "y.png"
    before = remote_fingerprint("az://sampledata/mnist")
    az_data.pipe("sampledata/mnist/x.png", b"changed")
    assert remote_fingerprint("az://sampledata/mnist") != before
    changed = fetch("az://sampledata/mnist", folder)
    assert changed != model and open(os.path.join(changed, "x.png")).read() == "changed"


def test_fetch_of_a_missing_url_names_it(azurite, tmp_path):
    from snakebatch.storage.locations import fetch

    import fsspec

    fsspec.filesystem("az").mkdir("models")
    with pytest.raises(OSError) as caught:
        fetch("az://models/none/", str(tmp_path))
    assert str(caught.value) == "'az://models/none/' cannot be downloaded: FileNotFoundError: 'az://models/none/' does not exist"


@pytest.fixture
def http_root(tmp_path):
    """A folder served over http://127.0.0.1:PORT/ by a thread of this process."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_one_file_over_http_is_listed_and_downloaded(http_root, tmp_path):
    folder, base = http_root
    (folder / "img.png").write_bytes(b"pixels")
    items = list(FILES.list(spec([f"{base}/img.png"])))
    assert [(i.path, i.size) for i in items] == [(f"{base}/img.png", 6)]
    batch = FILES.mini_batches(items, spec([], size=1))[0]
    paths = FILES.materialise(batch, {}, Cache(folder=str(tmp_path / "dl")))
    assert [open(p, "rb").read() for p in paths] == [b"pixels"]


# --------------------------------------------------------- concurrent downloads of one mini-batch
class _Concurrency:
    """Wraps snakebatch.kinds.files.download.fetch: counts downloads running at once, and makes each
    wait at a barrier of ``parties`` (so downloads done one after another would break it and fail
    their items: the test cannot pass sequentially; the timeout only keeps a failure from hanging)."""

    def __init__(self, real, parties):
        import threading

        self.real, self.lock = real, threading.Lock()
        self.barrier = threading.Barrier(parties, timeout=30)
        self.active = self.most = self.calls = 0

    def __call__(self, name, target, storage_options):
        with self.lock:
            self.active += 1
            self.calls += 1
            self.most = max(self.most, self.active)
        try:
            self.barrier.wait()
            return self.real(name, target, storage_options)
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture
def many_blobs(azurite):
    import fsspec

    fs = fsspec.filesystem("az")
    fs.mkdir("many")
    for i in range(6):
        fs.pipe(f"many/b/{i}.png", f"blob {i}".encode() * (i + 1))
    return fs


def test_the_files_of_a_mini_batch_download_concurrently_at_most_download_threads_at_a_time(
        many_blobs, tmp_path, monkeypatch):
    from snakebatch.kinds.files import download

    batch = FILES.mini_batches(FILES.list(spec(["az://many/b/"])), spec([], size=6))[0]
    spy = _Concurrency(download.fetch, parties=2)
    monkeypatch.setattr(download, "fetch", spy)
    paths = FILES.materialise(batch, {}, Cache(folder=str(tmp_path / "dl"), download_threads=2))
    assert (spy.calls, spy.most) == (6, 2)
    assert type(paths) is list                                   # no item failed
    assert [open(p).read() for p in paths] == [f"blob {i}" * (i + 1) for i in range(6)]   # in item order
    assert sorted(f for _, _, fs in os.walk(tmp_path / "dl") for f in fs) == [f"{i}.png" for i in range(6)]


def test_concurrent_downloads_fail_only_the_missing_blobs_named_by_url_and_leave_no_part_files(
        many_blobs, tmp_path, monkeypatch):
    from snakebatch.kinds.files import download

    batch = FILES.mini_batches(FILES.list(spec(["az://many/b/"])), spec([], size=6))[0]
    many_blobs.rm("many/b/1.png")
    many_blobs.rm("many/b/4.png")
    spy = _Concurrency(download.fetch, parties=6)               # all six at once
    monkeypatch.setattr(download, "fetch", spy)
    cache = Cache(folder=str(tmp_path / "dl"), download_threads=8)
    paths = FILES.materialise(batch, {}, cache)
    assert (spy.calls, spy.most) == (6, 6)
    assert sorted(paths.failed) == [1, 4]
    for position in (1, 4):
        assert paths.failed[position].startswith(
            f"DownloadError: input file 'az://many/b/{position}.png' cannot be downloaded: ")
        assert paths[position] == f"az://many/b/{position}.png"
    assert [open(paths[i]).read() for i in (0, 2, 3, 5)] == [f"blob {i}" * (i + 1) for i in (0, 2, 3, 5)]
    assert sorted(f for _, _, fs in os.walk(tmp_path / "dl") for f in fs) == ["0.png", "2.png", "3.png", "5.png"]
    FILES.release(paths, cache)
    assert [f for _, _, fs in os.walk(tmp_path / "dl") for f in fs] == []


# ------------------------------------------------------------------ S3 authentication failures
def _permission_error_from(code):
    """What s3fs raises for a refused request: a PermissionError raised while handling botocore's
    ClientError (which keeps the error code)."""
    from botocore.exceptions import ClientError

    try:
        try:
            raise ClientError({"Error": {"Code": code, "Message": "refused"}}, "ListObjectsV2")
        except ClientError:
            raise PermissionError("The request was refused.")
    except PermissionError as exc:
        return exc


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"])
def test_an_s3_authentication_failure_names_the_bucket_and_the_endpoint(code, monkeypatch):
    from snakebatch.storage.locations import storage_error

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert storage_error("s3://bucket/data/", _permission_error_from(code), "cannot be listed") == (
        "'s3://bucket/data/' cannot be listed: authentication failed for bucket 'bucket' at http://127.0.0.1:9 "
        "(check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment): The request was refused.")


def test_an_s3_access_denied_is_not_called_an_authentication_failure():
    from snakebatch.storage.locations import storage_error

    assert storage_error("s3://bucket/data/x.png", _permission_error_from("AccessDenied")) == \
        "'s3://bucket/data/x.png' cannot be read: PermissionError: The request was refused."
