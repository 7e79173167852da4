"""Whole runs over data in object storage: Azurite (az://), moto's S3 server (s3://) and
gcp-storage-emulator (gs://) give the same bytes as the same data on the local disk, and no
credential is written anywhere."""

import os

import pandas as pd
import pytest

from helpers import write

pytestmark = [pytest.mark.slow, pytest.mark.storage]

BASENAMES = """
    import os

    def init():
        pass

    def run(mini_batch):
        assert all(os.path.isfile(p) for p in mini_batch), mini_batch  # local copies
        return [os.path.basename(p) + ": " + open(p, encoding="utf-8").read().strip() for p in mini_batch]
"""

DOUBLE = """
    def init():
        pass

    def run(mini_batch):
        return mini_batch.assign(double=mini_batch["x"] * 2)
"""

NAMES = ["a b.txt", "f0.txt", "f1.txt", "x.txt", "x.txt.1", "zé ü.txt"]


def make_bucket(store, name):
    import fsspec

    if store in ("az", "gs"):
        fsspec.filesystem(store).mkdir(name)
    else:
        import boto3

        boto3.client("s3").create_bucket(Bucket=name)
    return fsspec.filesystem(store)


def upload_folder(fs, folder, target):
    for root, _, files in os.walk(folder):
        for name in files:
            local = os.path.join(root, name)
            fs.put_file(local, f"{target}/{os.path.relpath(local, folder)}")


def files_holding(root, secret):
    """Every file under ``root`` (.snakemake included) whose bytes contain ``secret``."""
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as handle:
                if secret.encode() in handle.read():
                    found.append(os.path.relpath(path, root))
    return found


@pytest.mark.parametrize("store", ["az", "s3", "gs"])
def test_a_file_dataset_in_object_storage_gives_the_local_bytes_and_writes_no_secret(store, request, workflow):
    service = request.getfixturevalue({"az": "azurite", "s3": "moto_s3", "gs": "gcs"}[store])
    for i, name in enumerate(NAMES):
        write(workflow.path("data", name), f"{i * 3}\n")
    fs = make_bucket(store, "sampledata")
    upload_folder(fs, workflow.path("data"), "sampledata/mnist")
    write(workflow.path("scripts", "names.py"), BASENAMES)
    base = {"entry_script": "names.py", "source_directory": "scripts", "mini_batch_size": 4,
            "append_row_file_name": "out.txt", "process_count_per_node": 2}
    workflow.write_config({**base, "run_name": "local", "input": {"path": "data"}})
    workflow.run()
    workflow.write_config({**base, "run_name": "remote", "input": {"path": f"{store}://sampledata/mnist/"}})
    proc = workflow.run()
    local = workflow.read("results", "local", "out.txt")
    assert local == "".join(f"{name}: {i * 3}\n" for i, name in enumerate(NAMES))
    assert workflow.read("results", "remote", "out.txt") == local
    assert "6 files -> 2 mini-batches" in workflow.read("results", "remote", "logs", "partition.log")
    if store != "gs":  # the GCS emulator takes no credentials
        assert service.secret not in proc.stdout + proc.stderr
        assert files_holding(workflow.root, service.secret) == []


def test_tabular_csv_and_parquet_from_blobs_equal_the_local_runs(azurite, workflow):
    frame = pd.DataFrame({"x": range(300), "name": [f"n{i}" for i in range(300)]})
    os.makedirs(workflow.path("tables"))
    frame.to_csv(workflow.path("tables", "t.csv"), index=False)
    frame.to_parquet(workflow.path("tables", "t.parquet"), row_group_size=64)
    fs = make_bucket("az", "tables")
    upload_folder(fs, workflow.path("tables"), "tables/in")
    write(workflow.path("scripts", "double.py"), DOUBLE)
    for fmt, size in (("csv", 1000), ("parquet", 1)):
        base = {"entry_script": "double.py", "source_directory": "scripts", "mini_batch_size": size,
                "append_row_format": "csv", "append_row_file_name": "out.csv"}
        workflow.write_config({**base, "run_name": f"local-{fmt}",
                               "input": {"type": "tabular", "path": f"tables/t.{fmt}"}})
        workflow.run()
        workflow.write_config({**base, "run_name": f"blob-{fmt}",
                               "input": {"type": "tabular", "path": f"az://tables/in/t.{fmt}"}})
        workflow.run()
        local = workflow.read("results", f"local-{fmt}", "out.csv")
        assert local.splitlines()[:3] == ["x,name,double", "0,n0,0", "1,n1,2"]
        assert len(local.splitlines()) == 301
        assert workflow.read("results", f"blob-{fmt}", "out.csv") == local
    assert files_holding(workflow.root, azurite.secret) == []


def test_the_demo_over_azurite_and_s3_gives_the_local_outputs_byte_for_byte(demo_workflow, azurite, moto_s3):
    workflow = demo_workflow
    workflow.run()  # the demo config: resources/demo/mnist on the local disk
    local = workflow.read("results", "mnist", "mnist_outputs.txt")
    assert len(local.splitlines()) == 450
    images = workflow.path("resources", "demo", "mnist")
    for store in ("az", "s3"):
        upload_folder(make_bucket(store, "sampledata"), images, "sampledata/mnist")
        # the demo's own settings (config/demo.yaml) with its images read from the store, as in the seed
        workflow.run("--configfile", "config/demo.yaml", "--config", f"run_name={store}",
                     f"input={{'path': '{store}://sampledata/mnist/'}}")
        assert workflow.read("results", store, "mnist_outputs.txt") == local
    assert files_holding(workflow.root, azurite.secret) == []
    assert files_holding(workflow.root, moto_s3.secret) == []


RESOURCES = """
    import os

    from azureml.core import Model
    from snakebatch import EntryScript

    def init():
        global LABEL, WEIGHTS
        side = EntryScript().side_inputs["labels"]
        model = Model.get_model_path("m")
        assert os.path.isfile(side) and os.path.isdir(model), (side, model)
        LABEL = open(side).read().strip()
        WEIGHTS = open(os.path.join(model, "sub", "w.txt")).read().strip()

    def run(mini_batch):
        return [f"{os.path.basename(p)} {LABEL} {WEIGHTS}" for p in mini_batch]
"""


def test_models_and_side_inputs_by_url_are_local_paths_before_init_and_reused_by_etag(azurite, workflow):
    fs = make_bucket("az", "assets")
    fs.pipe("assets/labels.txt", b"L1\n")
    fs.pipe("assets/model/sub/w.txt", b"W1\n")
    for i in range(4):
        write(workflow.path("data", f"f{i}.txt"), f"{i}\n")
    write(workflow.path("scripts", "res.py"), RESOURCES)
    workflow.write_config({"entry_script": "res.py", "source_directory": "scripts", "mini_batch_size": 2,
                           "input": {"path": "data"}, "append_row_file_name": "out.txt",
                           "side_inputs": {"labels": "az://assets/labels.txt"}, "models": {"m": "az://assets/model/"},
                           "process_count_per_node": 2})
    workflow.run()
    assert workflow.read("results", "mnist", "out.txt") == "".join(f"f{i}.txt L1 W1\n" for i in range(4))
    workflow.run("--forcerun", "infer_shard")  # nothing changed: every mini-batch reused
    assert workflow.read("results", "mnist", "summary.json").count('"reused_mini_batches": 2') == 1
    fs.pipe("assets/model/sub/w.txt", b"W2\n")  # a new etag: the shard jobs rerun, nothing reused
    workflow.run()
    assert workflow.read("results", "mnist", "summary.json").count('"reused_mini_batches": 0') == 1
    assert workflow.read("results", "mnist", "out.txt") == "".join(f"f{i}.txt L1 W2\n" for i in range(4))
    assert files_holding(workflow.root, azurite.secret) == []


def test_output_uri_gets_the_merged_file_summary_and_error_report(azurite, workflow):
    fs = make_bucket("az", "results")
    for i in range(5):
        write(workflow.path("data", f"f{i}.txt"), f"{i}\n")
    write(workflow.path("scripts", "names.py"), BASENAMES)
    workflow.write_config({"entry_script": "names.py", "source_directory": "scripts", "mini_batch_size": 2,
                           "input": {"path": "data"}, "append_row_file_name": "out.txt",
                           "output_uri": "az://results/runs/first"})
    proc = workflow.run()
    assert sorted(fs.ls("results/runs/first")) == ["results/runs/first/errors.jsonl", "results/runs/first/out.txt",
                                                   "results/runs/first/summary.json"]
    for name in ("out.txt", "summary.json", "errors.jsonl"):
        assert fs.cat(f"results/runs/first/{name}").decode() == workflow.read("results", "mnist", name)
    assert '"output_uri": "az://results/runs/first"' in workflow.read("results", "mnist", "summary.json")
    assert "(uploaded to az://results/runs/first)" in proc.stdout + proc.stderr


PREFETCH = """
    import os

    import fsspec

    LIMIT = int(os.environ["LIMIT"])

    def init():
        fs = fsspec.filesystem("az")
        if fs.exists("data/in/f03.txt"):  # deleted after the partition listed it
            fs.rm("data/in/f03.txt")

    def held(folder, own):
        sizes = [os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files
                 if os.path.join(d, f) not in own]
        return sum(sizes), len(sizes)

    def run(mini_batch):
        folder = os.path.dirname(os.path.dirname(mini_batch[0]))
        ahead, count = held(folder, set(mini_batch))
        ok = ahead <= LIMIT and count <= 2  # at most the next mini-batch; the done ones are gone
        return [f"{os.path.basename(p)} {'ok' if ok else f'held {ahead} bytes in {count} files'}"
                for p in mini_batch]
"""


@pytest.mark.parametrize("limit", [2000, 1999, 0])  # one mini-batch: 2000 bytes
def test_prefetch_holds_at_most_prefetch_bytes_and_a_deleted_blob_fails_only_its_item(azurite, workflow, limit):
    import json

    fs = make_bucket("az", "data")
    for i in range(12):
        fs.pipe(f"data/in/f{i:02d}.txt", b"x" * 1000)
    write(workflow.path("scripts", "prefetch.py"), PREFETCH)
    workflow.write_config({"entry_script": "prefetch.py", "source_directory": "scripts", "mini_batch_size": 2,
                           "input": {"path": "az://data/in/", "prefetch_bytes": limit},
                           "append_row_file_name": "out.txt", "process_count_per_node": 1,
                           "environment_variables": {"LIMIT": str(limit)}})
    workflow.run()
    assert workflow.read("results", "mnist", "out.txt") == "".join(f"f{i:02d}.txt ok\n" for i in range(12) if i != 3)
    errors = [json.loads(line) for line in workflow.read("results", "mnist", "errors.jsonl").splitlines()]
    assert [(e["item"], e["mini_batch"]) for e in errors] == [("az://data/in/f03.txt", 1)]
    assert errors[0]["error"].startswith("DownloadError: input file 'az://data/in/f03.txt' cannot be downloaded: ")
    summary = json.loads(workflow.read("results", "mnist", "summary.json"))
    assert (summary["items"], summary["succeeded"], summary["failed"]) == (12, 11, 1)
    inputs = workflow.path("results", "mnist", "downloads", "shard-00000", "inputs")
    assert [f for _, _, files in os.walk(inputs) for f in files] == []  # every copy removed


def test_an_unreachable_endpoint_fails_the_dry_run_at_once_naming_the_url(workflow, monkeypatch):
    import time

    import services

    port = services.free_port()  # nothing listens there
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       f"DefaultEndpointsProtocol=http;AccountName={services.AZURITE_ACCOUNT};"
                       f"AccountKey={services.AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    write(workflow.path("scripts", "names.py"), BASENAMES)
    workflow.write_config({"entry_script": "names.py", "source_directory": "scripts",
                           "input": {"path": "az://sampledata/mnist/"}})
    start = time.monotonic()
    proc = workflow.run("-n", check=False)
    assert proc.returncode == 1
    assert time.monotonic() - start < 30
    assert ("snakebatch: invalid input: input.path: 'az://sampledata/mnist/' cannot be reached: its endpoint "
            f"http://127.0.0.1:{port} did not accept a connection within 5 s (Connection refused)") in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert services.AZURITE_KEY not in proc.stdout + proc.stderr


def test_a_wrong_key_gives_an_authentication_error_naming_the_account(azurite, workflow, monkeypatch):
    import services

    wrong = "d3JvbmdrZXl3cm9uZ2tleXdyb25na2V5d3JvbmdrZXk="
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING",
                       azurite.env["AZURE_STORAGE_CONNECTION_STRING"].replace(services.AZURITE_KEY, wrong))
    write(workflow.path("scripts", "names.py"), BASENAMES)
    workflow.write_config({"entry_script": "names.py", "source_directory": "scripts",
                           "input": {"path": "az://sampledata/mnist/"}})
    proc = workflow.run("-n", check=False)
    assert proc.returncode == 1
    assert ("snakebatch: invalid input: input.path: 'az://sampledata/mnist/' cannot be listed: authentication "
            "failed for storage account 'devstoreaccount1' (check the account key, SAS token or connection "
            "string in the environment): ") in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert wrong not in proc.stdout + proc.stderr


def test_a_proxy_resetting_every_fifth_connection_loses_and_duplicates_no_row(moto_s3, workflow, monkeypatch):
    from resetting_proxy import ResettingProxy

    fs = make_bucket("s3", "flaky")
    for i in range(40):
        fs.pipe(f"flaky/in/f{i:02d}.txt", f"{i}\n".encode())
    proxy = ResettingProxy(("127.0.0.1", moto_s3.extra["port"]), every=5)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
        write(workflow.path("scripts", "names.py"), BASENAMES)
        workflow.write_config({"entry_script": "names.py", "source_directory": "scripts", "mini_batch_size": 3,
                               "input": {"path": "s3://flaky/in/"}, "append_row_file_name": "out.txt",
                               "process_count_per_node": 2})
        workflow.run()
    finally:
        proxy.close()
    assert workflow.read("results", "mnist", "out.txt") == "".join(f"f{i:02d}.txt: {i}\n" for i in range(40))
    assert workflow.read("results", "mnist", "errors.jsonl") == ""
    print(f"proxy: {proxy.accepted} connections, {proxy.reset} reset")
    assert proxy.reset >= 1


def test_a_wrong_aws_secret_gives_an_authentication_error_naming_the_bucket_and_endpoint(moto_s3, workflow,
                                                                                          monkeypatch):
    import services

    make_bucket("s3", "sampledata").pipe("sampledata/mnist/a.txt", b"1\n")
    key_id = services.require_moto_authentication(moto_s3)
    wrong = "wrong-secret-7c41d2e9a0b3"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    write(workflow.path("scripts", "names.py"), BASENAMES)
    workflow.write_config({"entry_script": "names.py", "source_directory": "scripts",
                           "input": {"path": "s3://sampledata/mnist/"}})
    proc = workflow.run(check=False)  # a real run: whatever it writes is searched for the secret
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert ("snakebatch: invalid input: input.path: 's3://sampledata/mnist/' cannot be listed: authentication "
            f"failed for bucket 'sampledata' at {moto_s3.endpoint} (check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY in the environment): The request signature we calculated does not match the "
            "signature you provided. Check your key and signing method.") in output
    assert "Traceback" not in output
    assert wrong not in output
    assert files_holding(workflow.root, wrong) == []
