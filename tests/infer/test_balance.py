"""Balanced shards (balance_shards): shard jobs take unstarted mini-batches from busy ones through
claims in the run folder. Two real shard jobs (runner processes) with tiny entry scripts; the policy
cases (hand-offs, the early stop across shards) run against the fake worker in test_policies.py."""

import json
import os
import subprocess
import sys
import time

from helpers import file_mini_batches, mini_batch_result, run_files, runner_spec, write
from snakebatch.monitor import progress
from snakebatch.partition.manifest import ShardManifest
from snakebatch.infer.results import MiniBatchResult

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# f04 (shard 1's first) waits until the RELEASE file exists; f05 writes it: shard 0 takes the end
# of shard 1 (f07, f06, then f05) meanwhile, so who ran what is exact, not a matter of timing
HELD = """
    import os, signal, time
    RELEASE = {release!r}

    def init():
        pass

    def run(mini_batch):
        out = []
        for path in mini_batch:
            name = os.path.basename(path)
            if name == "f04.txt":
                deadline = time.time() + 60
                while not os.path.exists(RELEASE) and time.time() < deadline:
                    time.sleep(0.02)
                time.sleep({linger!r})
            if name == {release_by!r} and not os.path.exists(RELEASE):
                open(RELEASE, "w").close()
                if {kill!r}:   # the runner that took this mini-batch first dies holding its claim
                    os.kill(os.getppid(), signal.SIGKILL)
                    os._exit(0)
            if name == {fail!r}:
                raise ValueError("bad " + name)
            out.append(name + ": " + open(path).read().strip())
        return out
"""


def _two_shards(tmp_path, files):
    """Manifests of 2 shards over files f00..f07, one file per mini-batch (0-3 and 4-7)."""
    batches = file_mini_batches(files[:8], 1)
    paths = []
    for shard in (0, 1):
        manifest = ShardManifest(run_name="r", shard=shard, shard_count=2, total_mini_batches=8, total_items=8,
                                 mini_batches=batches[shard * 4:shard * 4 + 4])
        path = str(tmp_path / "run" / "partition" / f"shard-{shard:05d}.json")
        manifest.write(path)
        paths.append(path)
    return paths


def _start(tmp_path, spec_file, manifest, shard, invocation):
    env = dict(os.environ, SNAKEBATCH_INVOCATION=invocation,
               PYTHONPATH=os.path.join(REPO, "workflow") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    output = str(tmp_path / "run" / "shards" / f"shard-{shard:05d}.jsonl")
    return subprocess.Popen([sys.executable, "-m", "snakebatch.infer.job", "--spec-file", spec_file, "--manifest", manifest,
                             "--output", output, "--run-dir", str(tmp_path / "run")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _shard_file(tmp_path, shard):
    with open(tmp_path / "run" / "shards" / f"shard-{shard:05d}.jsonl") as handle:
        return [MiniBatchResult.from_json(line) for line in handle]


def _records(tmp_path, invocation):
    return {r.shard: r for r in progress.invocation_progress(str(tmp_path / "run"), invocation)}


def _race(tmp_path, files, release_by, kill, invocation, fail="", linger=0.0, **spec):
    """Run shard 1 (held at f04), then shard 0 once shard 1 claimed f04; returns both processes,
    ended, and the claims folder."""
    script = write(tmp_path / "held.py", HELD.format(release=str(tmp_path / "release"), release_by=release_by,
                                                     kill=kill, fail=fail, linger=linger))
    spec_file = write(tmp_path / "spec.json", runner_spec(script, run_max_try=1, **spec).to_json())
    manifests = _two_shards(tmp_path, files)
    folder = tmp_path / "run" / "claims" / invocation
    second = _start(tmp_path, spec_file, manifests[1], 1, invocation)
    _wait_for(str(folder / "000000004.0"))
    first = _start(tmp_path, spec_file, manifests[0], 0, invocation)
    first.output = first.communicate(timeout=60)[0]   # reaped before shard 1 judges its claims
    second.output = second.communicate(timeout=60)[0]
    return first, second, folder


def test_an_idle_shard_takes_the_end_of_a_busy_one_and_results_stay_in_order_once(tmp_path, files):
    first, second, folder = _race(tmp_path, files, "f05.txt", False, "inv-steal", fail="f06.txt")
    assert (first.returncode, second.returncode) == (0, 0)
    own, busy = _shard_file(tmp_path, 0), _shard_file(tmp_path, 1)
    assert [(r.index, r.agent_name) for r in own] == [(0, "process000"), (1, "process000"), (2, "process000"),
                                                      (3, "process000")]
    assert [(r.index, r.agent_name) for r in busy] == [(4, "process001"), (5, "process000"), (6, "process000"),
                                                       (7, "process000")]
    assert busy[3].started_at < busy[2].started_at < busy[1].started_at   # taken from the end: 7, 6, 5
    assert [line for r in own + busy for line in r.lines] == [f"f{i:02d}.txt: {i}" for i in range(8) if i != 6]
    [failure] = busy[2].failures     # computed by shard 0, named by the shard it belongs to
    assert (failure.item, failure.mini_batch, failure.shard, failure.error) == (files[6], 6, 1, "ValueError: bad f06.txt")
    records = _records(tmp_path, "inv-steal")
    assert [(r.state, r.done_mini_batches, r.done_items, r.failed_items, r.stolen_mini_batches, r.stolen_items,
             r.adopted_mini_batches) for r in records.values()] == [("done", 7, 7, 1, 3, 3, 0),
                                                                     ("done", 1, 1, 0, 0, 0, 3)]
    assert sum(r.done_mini_batches for r in records.values()) == 8     # the live view ends at 100%, not more
    assert sorted(os.listdir(folder)) == sorted([f"{i:09d}.0" for i in range(8)] + [
        f"{i:09d}.result.json" for i in (5, 6, 7)])
    assert second.output.endswith("snakebatch runner: shard-00001.json: 4 mini-batch(es), 4 item(s), 1 failed, 0 reused\n")


def test_a_stealer_that_dies_holding_a_claim_leaves_it_to_the_owner(tmp_path, files):
    first, second, folder = _race(tmp_path, files, "f07.txt", True, "inv-kill")
    assert (first.returncode, second.returncode) == (-9, 0)
    busy = _shard_file(tmp_path, 1)
    assert [(r.index, r.agent_name) for r in busy] == [(4, "process001"), (5, "process001"), (6, "process001"),
                                                       (7, "process001")]
    assert [line for r in busy for line in r.lines] == [f"f{i:02d}.txt: {i}" for i in range(4, 8)]
    assert not (tmp_path / "run" / "shards" / "shard-00000.jsonl").exists()
    # mini-batch 7: claimed by the killed shard 0 (generation 0), taken over by its owner (1)
    assert sorted(os.listdir(folder)) == [f"{i:09d}.0" for i in range(8)] + ["000000007.1"]
    assert json.loads((folder / "000000007.0").read_text())["shard"] == 0
    assert json.loads((folder / "000000007.1").read_text())["shard"] == 1
    records = _records(tmp_path, "inv-kill")
    assert records[0].state == "running"      # killed: its last record stays (status calls it lost)
    assert (records[1].state, records[1].done_mini_batches, records[1].stolen_mini_batches,
            records[1].adopted_mini_batches) == ("done", 4, 0, 0)
    node_log = (tmp_path / "run" / "logs" / "sys" / "node").rglob("*")
    text = "".join(p.read_text() for p in node_log if p.is_file() and "00001" in p.name)
    assert f"mini-batch 7: claimed again, computed here: its holder (shard 0, pid {first.pid}) has exited" in text


def test_without_balance_shards_no_claims_are_made(tmp_path, files):
    script = write(tmp_path / "echo.py", """
        import os
        def run(mini_batch):
            return [os.path.basename(p) for p in mini_batch]
    """)
    results = run_files(tmp_path, runner_spec(script, balance_shards=False), files[:4], size=2)
    assert [r.index for r in results] == [0, 1]
    assert not (tmp_path / "run" / "claims").exists()


def test_in_order_says_which_results_were_put_emitted_or_waiting():
    from snakebatch.infer.shard import InOrder

    emitted = []
    in_order = InOrder([4, 5, 6, 7], lambda result: emitted.append(result.index))
    in_order.put(mini_batch_result(6, ["a"]))   # a hand-off ahead of 4 and 5: waits
    assert [in_order.placed(i) for i in (4, 5, 6, 7, 99)] == [False, False, True, False, False]
    in_order.put(mini_batch_result(4, ["b"]))
    assert emitted == [4] and [in_order.placed(i) for i in (4, 5, 6)] == [True, False, True]
    in_order.flush()   # stopped early: 5 and 7 never come
    assert emitted == [4, 6] and [in_order.placed(i) for i in (4, 5, 6, 7, 99)] == [True, True, True, True, False]
