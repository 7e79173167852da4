"""Snakemake's schema validation of the config, its complaint said as one line naming the key."""

from __future__ import annotations

import contextlib

from snakemake.exceptions import WorkflowError

from snakebatch.settings.validation import describe_validation_error


@contextlib.contextmanager
def config_errors_named():
    """Around ``snakemake.utils.validate(config, schema)``: the WorkflowError it raises for a
    config the schema refuses becomes ``snakebatch: invalid config: config key 'k': ...``
    (describe_validation_error), without the traceback. Any other error passes unchanged."""
    import jsonschema

    try:
        yield
    except WorkflowError as exc:
        cause = exc.__cause__ or exc.__context__  # snakemake raises it while handling the ValidationError
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        raise WorkflowError(f"snakebatch: invalid config: {describe_validation_error(cause)}") from None
