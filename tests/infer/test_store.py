import os

import pytest

from helpers import file_batch, runner_spec, write
from snakebatch.errors import ConfigError
from snakebatch.infer.results import MiniBatchResult
from snakebatch.infer.store import MiniBatchStore, known_modules, record_modules, runner_fingerprint


def test_fingerprint_follows_script_arguments_environment_and_model_files(tmp_path):
    script = write(tmp_path / "s.py", "x = 1\n")
    model = write(tmp_path / "model" / "w.bin", "w")
    base = runner_fingerprint(runner_spec(script, models={"m": str(tmp_path / "model")}))
    assert runner_fingerprint(runner_spec(script, models={"m": str(tmp_path / "model")})) == base
    assert runner_fingerprint(runner_spec(script, models={"m": str(tmp_path / "model")}, arguments=("--x",))) != base
    assert runner_fingerprint(runner_spec(script, models={"m": str(tmp_path / "model")},
                                   environment_variables={"A": "1"})) != base
    write(model, "changed")
    assert runner_fingerprint(runner_spec(script, models={"m": str(tmp_path / "model")})) != base
    # run_max_try and the timeout do not change a result
    assert runner_fingerprint(runner_spec(script, run_max_try=5, run_invocation_timeout=9.0)) == runner_fingerprint(runner_spec(script))
    with pytest.raises(ConfigError, match=r"config key 'side_inputs.lut': path '.*nope' does not exist"):
        runner_fingerprint(runner_spec(script, side_inputs={"lut": str(tmp_path / "nope")}))


def test_only_successful_results_are_stored(tmp_path):
    script = write(tmp_path / "s.py", "x = 1\n")
    store = MiniBatchStore(str(tmp_path / "store"), runner_spec(script), str(tmp_path))
    ok_batch = file_batch(0, 0, ("a",), "ka")
    bad_batch = file_batch(1, 1, ("b",), "kb")
    ok = MiniBatchResult(index=0, key="ka", first_item=0, item_count=1, succeeded=1, lines=("a!",), failures=(),
                         tries=1, duration_s=0.1, agent_name="w")
    bad = MiniBatchResult(index=1, key="kb", first_item=1, item_count=1, succeeded=0, lines=(), failures=(),
                          tries=1, duration_s=0.1, agent_name="w")
    store.save(ok, ok_batch)
    store.save(bad, bad_batch)
    assert store.load(ok_batch) == ok
    assert store.load(bad_batch) is None


def test_module_records_merge_across_shards(tmp_path):
    record_modules(str(tmp_path), "s.py", [str(tmp_path / "b.py")])
    record_modules(str(tmp_path), "s.py", [str(tmp_path / "a.py")])
    assert known_modules(str(tmp_path)) == sorted([str(tmp_path / "a.py"), str(tmp_path / "b.py")])


def test_the_item_index_reads_again_for_a_mini_batch_of_another_shard(tmp_path):
    from snakebatch.infer.store import ItemIndex

    fingerprint = "f" * 64
    a, b, c = ("a" * 64), ("b" * 64), ("c" * 64)
    writer = ItemIndex(str(tmp_path), shard=1)
    writer.add(fingerprint, [a, b, c], ["a.png: 1", "b.png: 2", "c.png: 3"])
    writer.close()
    reader = ItemIndex(str(tmp_path), shard=0)
    wanted = [a]                                  # this shard's missing items
    assert reader.lookup(fingerprint, [a], lambda: wanted) == {0: "a.png: 1"}
    assert reader._kept == {a}                    # only what this shard may ask for is held
    wanted.append(c)                              # a mini-batch taken from a busy shard asks for c
    assert reader.lookup(fingerprint, [c, b], lambda: wanted) == {0: "c.png: 3", 1: "b.png: 2"}
    assert reader._kept == {a, b, c}


def test_the_item_index_keeps_whole_lines_and_ignores_a_torn_last_one(tmp_path):
    from snakebatch.infer.store import ItemIndex

    fingerprint = "f" * 64
    a, b, c = ("a" * 64), ("b" * 64), ("c" * 64)
    writer = ItemIndex(str(tmp_path), shard=3)
    writer.add(fingerprint, [a, None, b], ["a.png: 1", "skipped: 0", "b.png: 2\tx"])
    writer.close()
    [name] = os.listdir(writer.folder(fingerprint))
    assert name.startswith("00003-") and name.endswith(".idx")
    with open(os.path.join(writer.folder(fingerprint), name), "a", encoding="utf-8") as handle:
        handle.write(c + "\tc.png: 3")  # a crash before the newline
    reader = ItemIndex(str(tmp_path))
    assert reader.lookup(fingerprint, [b, c, None, a], None) == {0: "b.png: 2\tx", 3: "a.png: 1"}
    assert ItemIndex(str(tmp_path)).lookup("e" * 64, [a, b], None) == {}


def _ipc(table):
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_a_result_table_is_stored_as_the_workers_arrow_ipc_bytes(tmp_path):
    import pyarrow as pa

    from snakebatch.formats.parquet import read_table_file, read_table_schema

    script = write(tmp_path / "s.py", "x = 1\n")
    store = MiniBatchStore(str(tmp_path / "store"), runner_spec(script, append_row_format="parquet"), str(tmp_path))
    table = pa.table({"id": [1, 2, 3], "name": ["a", "b", None]})
    path = store.save_table(file_batch(0, 0, ("a",), "ka"), [_ipc(table)])
    assert path.endswith(".arrow") and os.path.dirname(path).startswith(str(tmp_path / "store"))
    with open(path, "rb") as handle:
        assert handle.read() == _ipc(table)
    assert read_table_file(path).to_pydict() == {"id": [1, 2, 3], "name": ["a", "b", None]}
    assert read_table_schema(path).names == ["id", "name"]
    assert [name for name in os.listdir(os.path.dirname(path))] == [os.path.basename(path)]  # no temporary left


def test_the_parts_of_a_split_mini_batch_are_stored_as_one_table_in_order(tmp_path):
    import pyarrow as pa

    from snakebatch.errors import ResultSchemaError
    from snakebatch.formats.parquet import read_table_file

    script = write(tmp_path / "s.py", "x = 1\n")
    store = MiniBatchStore(str(tmp_path / "store"), runner_spec(script, append_row_format="parquet"), str(tmp_path))
    parts = [_ipc(pa.table({"id": [1, 2]})), _ipc(pa.table({"id": [5]})), _ipc(pa.table({"id": [7, 8]}))]
    path = store.save_table(file_batch(0, 0, ("a",), "ka"), parts)
    assert read_table_file(path).to_pydict() == {"id": [1, 2, 5, 7, 8]}
    with pytest.raises(ResultSchemaError, match=r"^mini-batch 3: the parts of its result have different columns or "
                                                r"types: "):
        store.save_table(file_batch(3, 0, ("b",), "kb"), [_ipc(pa.table({"id": [1]})), _ipc(pa.table({"x": [1.5]}))])


def test_a_parquet_table_file_of_an_older_store_is_still_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from snakebatch.formats.parquet import read_table_file, read_table_schema

    pq.write_table(pa.table({"id": [4, 5]}), tmp_path / "old.parquet")
    assert read_table_file(str(tmp_path / "old.parquet")).to_pydict() == {"id": [4, 5]}
    assert read_table_schema(str(tmp_path / "old.parquet")).names == ["id"]


# ------------------------------------------------------------------- store keys are pinned
PINNED_FINGERPRINT = "6e3f69107ac11e88c30dd0e2c24759752a52d7360d8d702913a14c6235721f99"
PINNED_RESULT = "minibatches/70/70038a726a325020c7e49adbeff383b05c73609e7fe4c127c0f0e1cdf528262a.json"


def _pinned_spec(tmp_path, monkeypatch):
    """A fixed entry script, helper module, model (size and mtime fixed), arguments and
    environment, in a fixed working directory layout."""
    monkeypatch.chdir(tmp_path)
    write("s.py", "def run(mini_batch):\n    return mini_batch\n")
    write("helper.py", "K = 1\n")
    model = write("model/w.bin", "weights")
    os.utime(model, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    return runner_spec("s.py", arguments=("--k", "3"), environment_variables={"A": "1"}, models={"m": "model"})


def test_store_keys_are_those_of_results_stored_before(tmp_path, monkeypatch):
    """Values computed before the storage restructure (issue 20): a changed key would make every
    run recompute what it has stored."""
    spec = _pinned_spec(tmp_path, monkeypatch)
    assert runner_fingerprint(spec, ["helper.py"]) == PINNED_FINGERPRINT
    record_modules(".", "s.py", ["helper.py"])
    store = MiniBatchStore(os.path.join("results", "r", "minibatches"), spec, ".")
    assert store.fingerprint == PINNED_FINGERPRINT
    batch = file_batch(0, 0, ("a.png",), "0" * 64)
    stored = MiniBatchResult(index=0, key="0" * 64, first_item=0, item_count=1, succeeded=1, lines=("a.png: 1",),
                             failures=(), tries=1, duration_s=0.1, agent_name="w")
    write(os.path.join("results", "r", PINNED_RESULT), stored.to_json() + "\n")  # as an earlier run stored it
    assert store.load(batch) == stored
    store.save(stored, batch)
    store.commit()
    assert sorted(os.path.relpath(os.path.join(d, f), os.path.join("results", "r"))
                  for d, _, files in os.walk("results") for f in files) == [PINNED_RESULT]


def test_the_item_index_folder_is_that_of_indexes_written_before(tmp_path, monkeypatch):
    from snakebatch.infer.store import ItemIndex

    a = "a" * 64
    folder = tmp_path / "minibatches" / "items" / PINNED_FINGERPRINT[:32]
    write(folder / "00000-1-1.idx", f"{a}\ta.png: 1\n")  # an index an earlier run wrote
    assert ItemIndex(str(tmp_path / "minibatches")).lookup(PINNED_FINGERPRINT, [a], None) == {0: "a.png: 1"}


def _record_many(run_dir, prefix, count):
    for i in range(count):
        record_modules(run_dir, "s.py", [os.path.join(run_dir, f"{prefix}{i}.py")])


def test_module_records_of_shards_writing_at_once_are_all_kept(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    jobs = [context.Process(target=_record_many, args=(str(tmp_path), prefix, 25)) for prefix in "ab"]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(60)
        assert job.exitcode == 0
    assert len(known_modules(str(tmp_path))) == 50
    assert not os.path.exists(tmp_path / "entry_script_modules.json.lock")  # an O_EXCL lock, released
