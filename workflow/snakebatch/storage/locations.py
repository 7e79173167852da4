"""Where data lives: plain local paths, ``file://`` URLs and other fsspec URLs.

A *location* is what the config gives (``input.path``, ``models``, ``side_inputs``): a plain path
(relative to the working directory or absolute), a ``file://`` URL, or an fsspec URL such as
``s3://bucket/x``. Local locations are read with ``os`` (exact, fast); the others through fsspec.
"""

from __future__ import annotations

FILE_SCHEME = "file://"
# info() keys that name a version of an object's content, in order of preference
IDENTITY_KEYS = ("ETag", "etag", "version_id", "VersionId", "generation")


def is_url(location: str) -> bool:
    """True for anything with ``scheme://`` (``file://`` included)."""
    return "://" in location


def is_local(location: str) -> bool:
    """True for a plain path or a ``file://`` URL."""
    return not is_url(location) or location.startswith(FILE_SCHEME)


def local_path(location: str) -> str:
    """The local path of a plain path (itself, unchanged) or of a ``file://`` URL
    (``file:///data/x`` -> ``/data/x``, ``file://data/x`` -> ``data/x``: relative stays relative,
    so a run sees the same item names as with the plain path). Raises ValueError for other URLs."""
    if not is_url(location):
        return location
    if location.startswith(FILE_SCHEME):
        return location[len(FILE_SCHEME):] or "."
    raise ValueError(f"{location!r} is not a local path or file:// URL")


def filesystem(location: str, storage_options: dict | None = None):
    """(fsspec filesystem, path inside it) of a non-local URL; (None, local path) of a local one."""
    if is_local(location):
        return None, local_path(location)
    from fsspec.core import url_to_fs

    return url_to_fs(location, **(storage_options or {}))


def change_identity(fs, path: str, info: dict | None = None) -> str:
    """The change identity (``ukey``) of the file ``path`` of the fsspec filesystem ``fs``: the
    store's own version of the content (``ETag``, ``version_id``, ``generation``, from ``info``
    when given, else ``fs.info``), else ``fs.ukey(path)`` (a hash of the file's properties)."""
    info = info if info is not None else fs.info(path)
    for key in IDENTITY_KEYS:
        value = info.get(key)
        if value:
            return f"{key.lower()}:{str(value).strip(chr(34))}"
    return "ukey:" + str(fs.ukey(path))


def local_identity(size: int, mtime_ns: int) -> str:
    """The change identity of a local file: its size and modification time in nanoseconds."""
    return f"{size}:{mtime_ns}"



# ------------------------------------------------------------------------------------ credentials
# storage_options travel as JSON on the shell command lines Snakemake records (and in .snakemake/),
# so they must hold no secret: credentials come from the environment only.
SECRET_WORDS = ("key", "secret", "password", "token", "credential", "credentials", "sas", "connection")
# the environment variable to use instead of a refused storage_options key
SECRET_HINTS = {
    "account_key": "AZURE_STORAGE_ACCOUNT_KEY",
    "sas_token": "AZURE_STORAGE_SAS_TOKEN",
    "connection_string": "AZURE_STORAGE_CONNECTION_STRING",
    "client_secret": "AZURE_STORAGE_CLIENT_SECRET",
    "key": "AWS_ACCESS_KEY_ID",
    "secret": "AWS_SECRET_ACCESS_KEY",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "token": "AWS_SESSION_TOKEN",
    "aws_session_token": "AWS_SESSION_TOKEN",
}
# environment variables whose values are secrets: never written anywhere (see ``redact``)
SECRET_ENV = ("AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING",
              "AZURE_STORAGE_CLIENT_SECRET", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
              "GOOGLE_APPLICATION_CREDENTIALS_JSON")


def looks_secret(name: str) -> bool:
    """True for an option name such as ``account_key``, ``sas_token``, ``secret``, ``password``
    (one of SECRET_WORDS as a ``_``/``-`` separated part of the name)."""
    parts = name.lower().replace("-", "_").split("_")
    return any(part in SECRET_WORDS for part in parts)


def secret_option(options: dict, prefix: str = "") -> tuple[str, str] | None:
    """(dotted key, environment variable hint) of the first secret-looking key in ``options``
    (nested dicts such as ``client_kwargs`` included), None when there is none."""
    for name, value in options.items():
        dotted = f"{prefix}{name}"
        if looks_secret(str(name)):
            hint = SECRET_HINTS.get(str(name).lower())
            return dotted, (f"set the environment variable {hint} instead" if hint else
                            "give credentials through the store's environment variables instead")
        if isinstance(value, dict):
            found = secret_option(value, dotted + ".")
            if found:
                return found
    return None


def redact(text: str) -> str:
    """``text`` with the value of every secret environment variable (SECRET_ENV) and any
    ``AccountKey=``/``SharedAccessSignature=``/``sig=`` value replaced by ``***``."""
    import os
    import re

    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return re.sub(r"(AccountKey=|SharedAccessSignature=|[?&]sig=)[^;&\s'\"]+", r"\1***", text)


def storage_error(location: str, exc: BaseException, doing: str = "cannot be read") -> str:
    """One line for an error of the store behind ``location``: the URL, what failed, and the
    store's own reason (authentication failures name the account), never a traceback or a secret."""
    name = type(exc).__name__
    message = str(exc).strip().split("\n", 1)[0]
    if name == "ClientAuthenticationError" or "AuthenticationFailed" in str(exc) or "AuthorizationFailure" in str(exc):
        account = _azure_account(location)
        reason = f"authentication failed for storage account {account!r}" if account else "authentication failed"
        return redact(f"{location!r} {doing}: {reason} (check the account key, SAS token or connection "
                      f"string in the environment): {message}")
    if _s3_authentication_failed(exc):
        bucket = location.split("://", 1)[-1].split("/", 1)[0]
        at = endpoint(location)
        where = f"for bucket {bucket!r}" + (f" at {at}" if at else "")
        return redact(f"{location!r} {doing}: authentication failed {where} (check AWS_ACCESS_KEY_ID and "
                      f"AWS_SECRET_ACCESS_KEY in the environment): {message}")
    return redact(f"{location!r} {doing}: {name}: {message}")


# the S3 error codes of a request whose credentials the store refused
S3_AUTH_CODES = ("SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidClientTokenId", "ExpiredToken",
                 "InvalidToken", "AuthFailure")


def _s3_authentication_failed(exc: BaseException) -> bool:
    """True when ``exc``, or the error it was raised from (s3fs turns botocore's ClientError into
    a PermissionError, keeping the original as its context), is an S3 authentication failure."""
    seen = 0
    while exc is not None and seen < 5:
        code = ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code") \
            if isinstance(getattr(exc, "response", None), dict) else None
        if type(exc).__name__ in S3_AUTH_CODES or code in S3_AUTH_CODES or \
                any(c in str(exc) for c in S3_AUTH_CODES) or "signature we calculated does not match" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _azure_account(location: str) -> str | None:
    """The Azure storage account the environment (or an ``abfs://c@account...`` URL) names."""
    import os
    import re

    match = re.match(r"abfss?://[^@/]+@([^./]+)", location)
    if match:
        return match.group(1)
    if os.environ.get("AZURE_STORAGE_ACCOUNT_NAME"):
        return os.environ["AZURE_STORAGE_ACCOUNT_NAME"]
    found = re.search(r"AccountName=([^;]+)", os.environ.get("AZURE_STORAGE_CONNECTION_STRING", ""))
    return found.group(1) if found else None


# ------------------------------------------------------------------------- models, side inputs
def remote_files(location: str, storage_options: dict | None = None) -> tuple[object, str, list[tuple[str, str, dict]]]:
    """(fs, root path, [(path, relative name, info), ...]) of a URL naming one object or a prefix
    (every object under it, sorted). Raises FileNotFoundError naming the URL when there is none."""
    check_reachable(location, storage_options)
    fs, root = filesystem(location, storage_options)
    if fs.isfile(root):
        return fs, root, [(root, "", fs.info(root))]
    found = sorted(fs.find(root, detail=True).items())
    if not found:
        raise FileNotFoundError(f"{location!r} does not exist")
    base = root.rstrip("/") + "/"
    return fs, root, [(path, path[len(base):] if path.startswith(base) else path.rsplit("/", 1)[-1], info)
                      for path, info in found]


def remote_fingerprint(location: str, storage_options: dict | None = None) -> str:
    """Hex SHA-256 over (name, change identity) of every object of ``location`` (one object or a
    prefix): it changes when an object is added, removed or rewritten (its etag changes)."""
    import hashlib

    fs, _, files = remote_files(location, storage_options)
    digest = hashlib.sha256()
    for path, name, info in files:
        digest.update(f"{name}\0{change_identity(fs, path, info)}\n".encode())
    return digest.hexdigest()


def fetch(location: str, folder: str, storage_options: dict | None = None) -> str:
    """Download the object or prefix ``location`` into ``folder`` once per version and return its
    local path: ``{folder}/{fingerprint[:20]}/{base name}`` (a file, or a folder holding the
    prefix's objects by their relative names). A copy of the same version is reused; a new one
    is downloaded into a temporary folder and renamed, so a killed download is never taken for a
    whole one. Raises OSError with a message naming the URL (secrets redacted)."""
    import os
    import shutil
    import tempfile

    try:
        fs, root, files = remote_files(location, storage_options)
        import hashlib

        digest = hashlib.sha256()
        for path, name, info in files:
            digest.update(f"{name}\0{change_identity(fs, path, info)}\n".encode())
        base = root.rstrip("/").rsplit("/", 1)[-1] or "resource"
        version = os.path.join(folder, digest.hexdigest()[:20])
        target = os.path.join(version, base)
        if os.path.exists(target):
            return target
        os.makedirs(folder, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".fetch-", dir=folder)
        try:
            for path, name, _ in files:
                local = os.path.join(tmp, base, name) if name else os.path.join(tmp, base)
                os.makedirs(os.path.dirname(local), exist_ok=True)
                fs.get_file(path, local)
            if os.path.exists(version):
                shutil.rmtree(version)
            os.rename(tmp, version)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target
    except Exception as exc:  # noqa: BLE001 - each store raises its own types
        raise OSError(storage_error(location, exc, "cannot be downloaded")) from None


# ----------------------------------------------------------------------------- transient errors
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0)  # waits before the 2nd..5th try of a transient failure


def is_transient(exc: BaseException) -> bool:
    """True for an error that may pass when tried again: a reset or refused connection, a
    timeout, an HTTP 5xx or 429 (throttling), S3's SlowDown / Throttling / RequestTimeout."""
    if isinstance(exc, (FileNotFoundError, PermissionError)):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and (status >= 500 or status == 429):
        return True
    name = type(exc).__name__
    text = str(exc)
    return name in ("ServiceRequestError", "ServiceResponseError", "ClientConnectionError", "ServerDisconnectedError",
                    "ClientOSError", "ServerTimeoutError", "ReadTimeoutError", "EndpointConnectionError") or \
        any(code in text for code in ("SlowDown", "Throttling", "RequestTimeout", "ServerBusy", "InternalError",
                                      "Connection reset"))


def with_retries(call, delays=RETRY_DELAYS_S, sleep=None):
    """``call()``, tried again after each of ``delays`` (seconds) while it raises a transient
    error (``is_transient``); the last error, or any other, is raised."""
    import time

    sleep = sleep or time.sleep
    for delay in (*delays, None):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001
            if delay is None or not is_transient(exc):
                raise
            sleep(delay)


# ------------------------------------------------------------------------------ reachability
CONNECT_TIMEOUT_S = 5.0


def endpoint(location: str, storage_options: dict | None = None) -> str | None:
    """The http(s) endpoint the store of ``location`` is reached at, as far as the configuration
    tells (Azure: the connection string's BlobEndpoint or the account's blob host; S3:
    ``client_kwargs.endpoint_url`` or AWS_ENDPOINT_URL; GCS: ``endpoint_url`` or
    STORAGE_EMULATOR_HOST); None when unknown (the store's default)."""
    import os
    import re

    options = storage_options or {}
    protocol = location.split("://", 1)[0].lower()
    if protocol in ("az", "abfs", "abfss", "adl"):
        connection = options.get("connection_string") or os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
        found = re.search(r"BlobEndpoint=([^;]+)", connection)
        if found:
            return found.group(1)
        account = options.get("account_name") or _azure_account(location)
        if account:
            suffix = re.search(r"EndpointSuffix=([^;]+)", connection)
            return f"https://{account}.blob.{suffix.group(1) if suffix else 'core.windows.net'}"
        return None
    if protocol in ("s3", "s3a"):
        client = options.get("client_kwargs") or {}
        return (client.get("endpoint_url") or options.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL_S3")
                or os.environ.get("AWS_ENDPOINT_URL"))
    if protocol in ("gs", "gcs"):
        return options.get("endpoint_url") or os.environ.get("STORAGE_EMULATOR_HOST")
    if protocol in ("http", "https"):
        return location
    return None


def check_reachable(location: str, storage_options: dict | None = None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Open (and close) a TCP connection to the endpoint of ``location`` so an unreachable store
    fails in seconds, naming the URL and the endpoint, instead of after the client's minutes of
    retries. Does nothing when the endpoint is unknown. Raises ConnectionError."""
    import socket
    from urllib.parse import urlsplit

    url = endpoint(location, storage_options)
    if not url:
        return
    parts = urlsplit(url)
    if not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConnectionError(f"{location!r} cannot be reached: its endpoint {parts.scheme}://{parts.hostname}:{port} "
                              f"did not accept a connection within {timeout:g} s ({reason})") from None
