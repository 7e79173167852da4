"""Read a finished run back into pandas: ``read_results`` (the merged file) and ``read_errors``
(the error report).

The run folder says how it was written: ``specs/gather.json`` holds the ``append_row_format``,
``append_row_file_name`` and ``append_row_dataframe_header`` gather used. The seed tutorial reads
its ParallelRunStep output with ``pd.read_csv(path, delimiter=":", header=None)``; here the same
file comes back as two columns without guessing at delimiters.
"""

from __future__ import annotations

import os

from snakebatch.errors import ManifestError
from snakebatch.formats import get_format
from snakebatch.formats.txt import ITEM_COLUMN, RESULT_COLUMN  # noqa: F401 (the columns of txt lines read back)
from snakebatch.gather.error_report import read_error_report
from snakebatch.gather.summary import read_summary
from snakebatch.settings.config import GatherSpec
from snakebatch.storage.layout import RunLayout

# The columns of errors.jsonl (results.FailedItem.to_dict), in order.
ERROR_COLUMNS = ("item", "mini_batch", "shard", "worker", "tries", "exception", "message", "error", "traceback")


def _gather_spec(layout: RunLayout) -> GatherSpec:
    path = layout.stage_spec("gather")
    try:
        with open(path, encoding="utf-8") as handle:
            return GatherSpec.from_json(handle.read())
    except FileNotFoundError:
        raise ManifestError(f"{layout.root!r} is not a run folder: {path} is missing (it is written when "
                            "snakemake starts a run's jobs)") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestError(f"{path} is corrupt: {exc}") from None


def read_results(run_dir: str):
    """The merged results of the run in ``run_dir`` (``results/{run_name}``) as a pandas
    DataFrame, one row per successful item, in input order:

    - ``txt`` whose every line is ``"<item>: <result>"`` (the demo's ``"0.png: 7"``): two columns
      ``item`` and ``result`` (numbers when every result is one); other ``txt`` lines: one column
      ``result`` (the text of each line); ``txt`` written with ``append_row_dataframe_header``:
      the DataFrame's own columns (read as space-separated values);
    - ``csv``: ``pd.read_csv`` of the file (the header once); ``parquet``: ``pd.read_parquet``.

    Raises ManifestError naming the file when ``run_dir`` is no run folder, the run is
    ``summary_only`` (its outputs are the entry script's own files in ``outputs/``) or it has no
    merged file (not finished, or failed: summary.json says why)."""
    layout = RunLayout(run_dir)
    spec = _gather_spec(layout)
    if spec.output_action != "append_row":
        raise ManifestError(f"run {spec.run_name!r} has output_action {spec.output_action}: there is no merged "
                            f"file; the entry script wrote its outputs to {layout.outputs_dir}")
    path = layout.merged(spec.append_row_file_name)
    if not os.path.exists(path):
        status = _summary_status(layout)
        raise ManifestError(f"{path} does not exist: the run has not succeeded"
                            + (f" (summary.json: status {status})" if status else ""))
    return get_format(spec.append_row_format).read(path, spec.append_row_dataframe_header)


def read_errors(run_dir: str):
    """The error report of the run in ``run_dir`` (``errors.jsonl``) as a pandas DataFrame, one
    row per failed item in input order, columns ERROR_COLUMNS (``item``: the file, or the file and
    record; ``mini_batch``, ``shard``, ``worker`` (the agent that ran it), ``tries``; ``exception``, ``message``, ``error``
    (``"Type: message"``), ``traceback``). No rows when nothing failed. Raises ManifestError
    naming the file when it is missing (gather has not run) or a line is not JSON."""
    import pandas as pd

    report = read_error_report(RunLayout(run_dir).errors)
    return pd.DataFrame(list(report.records), columns=list(ERROR_COLUMNS))


def _summary_status(layout: RunLayout) -> str | None:
    """The status in ``summary.json``; None when there is none or it cannot be read (the message
    that asks for it names the missing merged file either way)."""
    try:
        return read_summary(layout.summary).status
    except ManifestError:
        return None
