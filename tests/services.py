"""Object stores for the tests: Azurite (Azure Blob), moto's S3 server and gcp-storage-emulator
(Google Cloud Storage's JSON API, PyPI package ``gcp-storage-emulator``), started on 127.0.0.1.

Each ``start_*`` starts one service on a free port with its own temporary folder, waits until it
answers, and returns a ``Service`` (its endpoint, the environment variables that reach it, and
``stop()``, which ends the process it started, by PID). When a service cannot start (the npm or
pip package is missing, it does not answer in time), the fixtures in ``conftest.py`` skip the test
with the reason, or fail it under ``CI=true``. ``.ci/run`` installs all three.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AZURITE_BIN = os.path.join(REPO, ".ci", "node", "node_modules", ".bin", "azurite-blob")
# Azurite's well-known development account (public, documented by Microsoft; not a secret)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
S3_KEY_ID = "testing-key-id"
S3_SECRET = "testing-secret-9f2c"  # moto accepts any; tests grep outputs for it
READY_TIMEOUT_S = 30.0


class ServiceUnavailable(Exception):
    """A service could not be started here; the message says why."""


@dataclass
class Service:
    """A running service: ``name``, ``endpoint`` (http://127.0.0.1:PORT...), ``env`` (the
    environment variables a client needs), ``secret`` (what must never be written anywhere),
    ``process`` (the Popen we started)."""

    name: str
    endpoint: str
    env: dict
    secret: str | None
    process: subprocess.Popen
    folder: str
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        """End the process we started (SIGTERM, then SIGKILL after 5 s), by its PID."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(process: subprocess.Popen, url: str, name: str, log_path: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            with open(log_path, encoding="utf-8", errors="replace") as handle:
                tail = handle.read()[-2000:]
            raise ServiceUnavailable(f"{name} exited with status {process.returncode}: {tail}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers (400/403 for an unauthenticated request): ready
        except OSError:
            time.sleep(0.1)
    process.kill()
    process.wait(5)
    raise ServiceUnavailable(f"{name} did not answer on {url} within {READY_TIMEOUT_S:.0f} s")


def _spawn(command: list[str], folder: str, name: str) -> tuple[subprocess.Popen, str]:
    log_path = os.path.join(folder, f"{name}.log")
    with open(log_path, "w") as log:
        try:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise ServiceUnavailable(f"{name} cannot be started ({command[0]}): {exc}") from None
    return process, log_path


def start_azurite(folder: str) -> Service:
    """Azurite's blob service on a free port, its data in ``folder`` (created)."""
    if not os.path.exists(AZURITE_BIN):
        raise ServiceUnavailable(f"Azurite is not installed ({AZURITE_BIN} is missing; "
                                 "run `npm install --prefix .ci/node azurite@3`)")
    _require("adlfs", "storage")
    os.makedirs(folder, exist_ok=True)
    port = free_port()
    process, log_path = _spawn([AZURITE_BIN, "--blobHost", "127.0.0.1", "--blobPort", str(port),
                                "--location", folder, "--skipApiVersionCheck", "--silent", "--disableTelemetry"], folder, "azurite")
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    _wait_ready(process, endpoint + "?comp=list", "Azurite", log_path)
    connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                  f"BlobEndpoint={endpoint};")
    return Service("azurite", endpoint, {"AZURE_STORAGE_CONNECTION_STRING": connection}, AZURITE_KEY,
                   process, folder, {"port": port})


def _require(module: str, extra: str) -> None:
    """Raise ServiceUnavailable naming ``module`` and the extra that installs it when it cannot be imported."""
    try:
        __import__(module)
    except ImportError:
        raise ServiceUnavailable(f"{module} is not installed (pip install -e '.[{extra}]')") from None


def _console_script(name: str, extra: str) -> str:
    """The path of console script ``name`` (this interpreter's bin folder first, then PATH); raises
    ServiceUnavailable naming the extra that installs it."""
    found = shutil.which(name, path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        raise ServiceUnavailable(f"{name} is not installed (pip install -e '.[{extra}]')")
    return found


def start_moto(folder: str) -> Service:
    """moto's S3 server on a free port (``folder``: its log)."""
    moto = _console_script("moto_server", "storage")
    _require("s3fs", "storage")
    os.makedirs(folder, exist_ok=True)
    port = free_port()
    process, log_path = _spawn([moto, "-H", "127.0.0.1", "-p", str(port)], folder, "moto")
    endpoint = f"http://127.0.0.1:{port}"
    _wait_ready(process, endpoint + "/moto-api/", "moto S3 server", log_path)
    env = {"AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_ENDPOINT_URL": endpoint,
           "AWS_DEFAULT_REGION": "us-east-1"}
    return Service("moto", endpoint, env, S3_SECRET, process, folder, {"port": port})


def start_gcs(folder: str) -> Service:
    """gcp-storage-emulator (Google Cloud Storage's JSON API) on a free port, its data in ``folder``.
    gcsfs reaches it through ``STORAGE_EMULATOR_HOST`` without credentials (it falls back to
    anonymous access); ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` keeps gcsfs from asking the
    storage-control API (which the emulator lacks) for each bucket's layout. No secret: ``secret``
    is None."""
    emulator = _console_script("gcp-storage-emulator", "test")
    _require("gcsfs", "storage")
    os.makedirs(folder, exist_ok=True)
    port = free_port()
    data = os.path.join(folder, "data")
    process, log_path = _spawn([emulator, "-d", data, "start", "--host", "127.0.0.1", "--port", str(port), "-q"],
                               folder, "gcs")
    endpoint = f"http://127.0.0.1:{port}"
    _wait_ready(process, endpoint + "/storage/v1/b", "gcp-storage-emulator", log_path)
    env = {"STORAGE_EMULATOR_HOST": endpoint, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    return Service("gcs", endpoint, env, None, process, folder, {"port": port})


def require_moto_authentication(service: Service, user: str = "snakebatch-test") -> str:
    """Make moto's S3 server ``service`` check every later request's signature (moto accepts any
    credentials until told otherwise) and return the access key id of a new IAM user, whose
    real secret is discarded: requests signed with that id and any secret fail with
    SignatureDoesNotMatch. Objects the test needs must be written before."""
    import boto3

    iam = boto3.client("iam", endpoint_url=service.endpoint)
    iam.create_user(UserName=user)
    key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    # POST /moto-api/reset-auth with N: authenticate every request after the next N (a plain-text
    # body: a form content type would hide it from moto)
    request = urllib.request.Request(service.endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
    return key_id
