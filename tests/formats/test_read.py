"""Reading a run back (snakebatch.read_results, snakebatch.read_errors): each append_row_format
round-trips what run() returned, through a real shard job and gather."""

import os

import pandas as pd
import pytest

from helpers import gather_spec, run_files, runner_spec, write


def _run(tmp_path, files, script_text, **settings):
    """Run one shard over ``files`` (mini-batches of 2) and gather it into tmp_path/run; returns the run folder."""
    from snakebatch.gather.job import gather

    run_dir = str(tmp_path / "run")
    output = {k: settings.pop(k) for k in ("append_row_format", "append_row_dataframe_header") if k in settings}
    script = write(tmp_path / "script.py", script_text)
    run_files(tmp_path, runner_spec(script, run_max_try=1, **output, **settings), files, size=2)
    spec = gather_spec(**output)
    write(os.path.join(run_dir, "specs", "gather.json"), spec.to_json())
    gather(spec, [str(tmp_path / "shards" / "shard-00000.jsonl")], run_dir)
    return run_dir


def test_txt_lines_shaped_item_colon_result_come_back_as_two_columns(tmp_path, files):
    import snakebatch

    run_dir = _run(tmp_path, files[:5], """
        import os
        def run(mini_batch):
            return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
    """)
    frame = snakebatch.read_results(run_dir)
    assert list(frame.columns) == ["item", "result"]
    assert frame["item"].tolist() == ["f00.txt", "f01.txt", "f02.txt", "f03.txt", "f04.txt"]
    assert frame["result"].tolist() == [0, 1, 2, 3, 4]
    assert str(frame["result"].dtype) == "int64"


def test_other_txt_lines_come_back_as_one_column_of_text(tmp_path, files):
    import snakebatch

    run_dir = _run(tmp_path, files[:3], """
        import os
        def run(mini_batch):
            return [{"file": os.path.basename(p)} if p.endswith("1.txt") else "plain " + os.path.basename(p)
                    for p in mini_batch]
    """)
    frame = snakebatch.read_results(run_dir)
    assert frame.to_dict("list") == {"result": ["plain f00.txt", "{'file': 'f01.txt'}", "plain f02.txt"]}


def test_txt_with_the_dataframe_header_comes_back_with_its_columns(tmp_path, files):
    import snakebatch

    run_dir = _run(tmp_path, files[:3], """
        import os
        import pandas as pd
        def run(mini_batch):
            return pd.DataFrame({"name": [os.path.basename(p) for p in mini_batch],
                                 "value": [int(open(p).read()) * 10 for p in mini_batch]})
    """, append_row_dataframe_header=True)
    frame = snakebatch.read_results(run_dir)
    assert frame.to_dict("list") == {"name": ["f00.txt", "f01.txt", "f02.txt"], "value": [0, 10, 20]}


@pytest.mark.parametrize("append_row_format", ["csv", "parquet"])
def test_csv_and_parquet_come_back_as_run_returned_them(tmp_path, files, append_row_format):
    import snakebatch

    run_dir = _run(tmp_path, files[:5], """
        import os
        import pandas as pd
        def run(mini_batch):
            return pd.DataFrame({"name": [os.path.basename(p) for p in mini_batch],
                                 "text": ["a, \\"quoted\\"\\nline" for p in mini_batch],
                                 "score": [int(open(p).read()) / 4 for p in mini_batch]})
    """, append_row_format=append_row_format)
    frame = snakebatch.read_results(run_dir)
    expected = pd.DataFrame({"name": [f"f{i:02d}.txt" for i in range(5)], "text": ['a, "quoted"\nline'] * 5,
                             "score": [i / 4 for i in range(5)]})
    pd.testing.assert_frame_equal(frame, expected)


def test_read_errors_returns_every_failed_item_and_read_results_the_rest(tmp_path, files):
    import snakebatch

    run_dir = _run(tmp_path, files[:4], """
        import os
        def run(mini_batch):
            for p in mini_batch:
                if p.endswith(("1.txt", "2.txt")):
                    raise ValueError("bad " + os.path.basename(p))
            return [os.path.basename(p) + ": ok" for p in mini_batch]
    """)
    assert snakebatch.read_results(run_dir).to_dict("list") == {"item": ["f00.txt", "f03.txt"], "result": ["ok", "ok"]}
    errors = snakebatch.read_errors(run_dir)
    assert list(errors.columns) == ["item", "mini_batch", "shard", "worker", "tries", "exception", "message", "error",
                                     "traceback"]
    assert errors[["item", "mini_batch", "exception", "message", "error"]].values.tolist() == [
        [files[1], 0, "ValueError", "bad f01.txt", "ValueError: bad f01.txt"],
        [files[2], 1, "ValueError", "bad f02.txt", "ValueError: bad f02.txt"]]
    assert errors["traceback"].str.contains("raise ValueError").tolist() == [True, True]


def test_a_folder_that_is_no_run_or_has_no_merged_file_is_named(tmp_path):
    import snakebatch
    from snakebatch.errors import ManifestError

    with pytest.raises(ManifestError) as info:
        snakebatch.read_results(str(tmp_path / "none"))
    assert str(info.value) == (f"{str(tmp_path / 'none')!r} is not a run folder: "
                               f"{tmp_path / 'none' / 'specs' / 'gather.json'} is missing (it is written when "
                               "snakemake starts a run's jobs)")
    write(tmp_path / "r" / "specs" / "gather.json", gather_spec().to_json())
    write(tmp_path / "r" / "summary.json", '{"status": "failed"}')
    with pytest.raises(ManifestError) as info:
        snakebatch.read_results(str(tmp_path / "r"))
    assert str(info.value) == f"{tmp_path / 'r' / 'out.txt'} does not exist: the run has not succeeded (summary.json: status failed)"
    with pytest.raises(ManifestError) as info:
        snakebatch.read_errors(str(tmp_path / "r"))
    assert str(info.value) == f"{tmp_path / 'r' / 'errors.jsonl'} does not exist: gather has not run for this run folder"
