"""Exception classes, named by the field's terms. Every message names the key, file or item."""


class SnakebatchError(Exception):
    """Base class of every error snakebatch raises on purpose."""


class ConfigError(SnakebatchError):
    """A configuration value is invalid or not supported; the message names the key."""


class DatasetError(SnakebatchError):
    """The input dataset is missing, empty or unreadable; the message names the path."""


class ManifestError(SnakebatchError):
    """A shard manifest or mini-batch result file is missing or corrupt; names the file."""


class EntryScriptError(SnakebatchError):
    """The entry script cannot be imported, lacks init()/run(), or its init() raised."""


class MiniBatchTimeout(SnakebatchError):
    """One run() call took longer than run_invocation_timeout seconds (ParallelRunStep)."""


class WorkerDied(SnakebatchError):
    """The worker process exited while it was running a mini-batch."""


class ErrorThresholdExceeded(SnakebatchError):
    """More items or mini-batches failed than error_threshold / allowed_failed_* tolerate."""


class ResultSchemaError(SnakebatchError):
    """Mini-batch results that must share one table schema (append_row_format csv or parquet)
    have different columns or types; the message names the two mini-batches."""


class StorageError(SnakebatchError):
    """An object store refused or failed a request; the message names the URL (never a secret)."""
