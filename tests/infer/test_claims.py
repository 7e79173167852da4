"""The claim protocol of balanced shards (snakebatch.infer.claims): exclusive claims, races, void and
stale claims, takeovers and hand-offs."""

import json
import os
import subprocess
import sys
import threading
import time

from snakebatch.monitor import progress
from snakebatch.infer.claims import Claim, ClaimBoard, remove_other_invocations


def board(tmp_path, shard, invocation="inv-1", host="node-a", pid=None, stale_after_s=80.0):
    return ClaimBoard(str(tmp_path / "run"), invocation, shard, stale_after_s, host=host,
                      pid=pid if pid is not None else os.getpid())


def test_a_claim_is_exclusive_and_names_its_holder(tmp_path):
    first = board(tmp_path, 0)
    claim = first.claim(7)
    assert (claim.index, claim.generation, claim.invocation, claim.shard, claim.host, claim.pid) == \
        (7, 0, "inv-1", 0, "node-a", os.getpid())
    stored = json.loads(open(first.path(7, 0)).read())
    assert sorted(stored) == ["at", "host", "invocation", "pid", "shard"]
    assert board(tmp_path, 1, host="node-b").claim(7) is None     # a live holder keeps it
    assert board(tmp_path, 1, host="node-b").claim(7, take_over=False) is None
    assert first.claim(7) == claim                        # its own holder gets it back
    assert os.listdir(first.folder) == ["000000007.0"]


def test_of_many_racing_claimants_exactly_one_wins(tmp_path):
    boards = [board(tmp_path, shard, host=f"node-{shard}") for shard in range(16)]
    start = threading.Barrier(len(boards))
    won = []

    def race(b):
        start.wait()
        claim = b.claim(3)
        if claim is not None:
            won.append(claim.shard)

    threads = [threading.Thread(target=race, args=(b,)) for b in boards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert Claim.parse(3, 0, open(boards[0].path(3, 0)).read()).shard == won[0]


def test_racing_processes_one_wins(tmp_path):
    script = (
        "import sys, time\n"
        "from snakebatch.infer.claims import ClaimBoard\n"
        "b = ClaimBoard(sys.argv[1], 'inv-1', int(sys.argv[2]), 80.0, host='node-' + sys.argv[2])\n"
        "time.sleep(max(0.0, float(sys.argv[3]) - time.time()))\n"
        "print('won' if b.claim(5) else 'lost')\n")
    at = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "run"), str(shard), str(at)],
                              stdout=subprocess.PIPE, text=True) for shard in range(4)]
    outcomes = sorted(p.communicate(timeout=30)[0].strip() for p in procs)
    assert outcomes == ["lost", "lost", "lost", "won"]


def test_a_claim_of_an_earlier_invocation_is_void(tmp_path):
    old = board(tmp_path, 1, invocation="inv-0")
    old.claim(2)
    new = board(tmp_path, 0, invocation="inv-1")
    with open(new.path(2, 0), "w") as handle:        # even one that sits in this invocation's folder
        handle.write(json.dumps({"invocation": "inv-0", "shard": 1, "host": "node-a", "pid": os.getpid(),
                                 "at": time.time()}))
    newest = new.current(2)
    assert new.void_reason(2, *newest) == "it names another invocation (inv-0)"
    taken = new.claim(2)
    assert (taken.generation, taken.shard, taken.invocation) == (1, 0, "inv-1")
    # the folders of other invocations go when a shard job of this one starts
    assert remove_other_invocations(str(tmp_path / "run"), "inv-1") == ["inv-0"]
    assert os.listdir(tmp_path / "run" / "claims") == ["inv-1"]


def test_an_earlier_attempt_of_the_same_shard_job_is_void(tmp_path):
    board(tmp_path, 1, host="node-b", pid=4242).claim(9)   # the attempt Snakemake retries
    retry = board(tmp_path, 1, host="node-c", pid=777)
    assert retry.void_reason(9, *retry.current(9)) == "an earlier attempt of this shard job (pid 4242 on node-b) holds it"
    assert retry.claim(9).generation == 1


def test_a_holder_that_exited_on_this_host_is_void(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    board(tmp_path, 1, pid=dead.pid).claim(4)
    me = board(tmp_path, 0)
    assert me.void_reason(4, *me.current(4)) == f"its holder (shard 1, pid {dead.pid}) has exited"
    assert me.claim(4).generation == 1


def test_a_holder_whose_record_says_it_ended_is_void_even_on_another_host(tmp_path):
    run_dir = str(tmp_path / "run")
    board(tmp_path, 1, host="node-b", pid=31).claim(4)
    me = board(tmp_path, 0)
    assert me.claim(4) is None                        # another host, fresh: it holds
    progress.write_progress(run_dir, progress.ShardProgress("inv-1", 1, 3, 3, 0, 0, state="failed",
                                                            host="node-b", pid=31))
    assert me.void_reason(4, *me.current(4)) == "its holder (shard 1, pid 31 on node-b) ended without its result"
    assert me.claim(4).generation == 1


def test_a_stale_claim_is_taken_over_exactly_once(tmp_path):
    holder = board(tmp_path, 1, host="node-b", pid=31)   # killed with its node: never heard of again
    claim = holder.claim(6)
    past = time.time() - 81
    os.utime(holder.path(6, 0), (past, past))
    takers = [board(tmp_path, shard, host=f"node-{shard}") for shard in (0, 2, 3, 4, 5, 6, 7, 8)]
    assert takers[0].void_reason(6, *takers[0].current(6)).startswith(
        "shard 1 (pid 31 on node-b) gave no sign of life for 81 s (> 80 s)")
    start = threading.Barrier(len(takers))
    won = []

    def race(b):
        start.wait()
        taken = b.claim(6)
        if taken is not None:
            won.append(taken)

    threads = [threading.Thread(target=race, args=(b,)) for b in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [c.generation for c in won] == [1]
    assert sorted(os.listdir(holder.folder)) == ["000000006.0", "000000006.1"]
    # the silent holder wakes up: its claim is superseded, its result is not handed off
    assert not holder.still_held(claim)
    assert holder.hand_off(claim, '{"index": 6}') is False
    assert holder.handed_off(6) is None


def test_a_heartbeat_keeps_a_claim_alive(tmp_path):
    holder = board(tmp_path, 1, host="node-b", pid=31)
    claim = holder.claim(6)
    past = time.time() - 81
    os.utime(holder.path(6, 0), (past, past))
    holder.heartbeat(claim)
    assert board(tmp_path, 0).claim(6) is None


def test_an_unreadable_claim_holds_until_stale(tmp_path):
    me = board(tmp_path, 0)
    with open(me.path(8, 0), "w"):
        pass                                          # created, its holder died before writing it
    assert me.current(8) == (0, None)
    assert me.claim(8) is None
    past = time.time() - 81
    os.utime(me.path(8, 0), (past, past))
    assert me.void_reason(8, 0, None).startswith("an unreadable claim gave no sign of life for 81 s")
    assert me.claim(8).generation == 1


def test_a_hand_off_is_read_back_whole(tmp_path):
    holder = board(tmp_path, 0)
    claim = holder.claim(11)
    assert holder.handed_off(11) is None
    assert holder.hand_off(claim, '{"index": 11}') is True
    assert board(tmp_path, 1).handed_off(11) == '{"index": 11}\n'
    assert sorted(os.listdir(holder.folder)) == ["000000011.0", "000000011.result.json"]


def test_claim_and_hand_off_files_are_the_run_layouts(tmp_path):
    from snakebatch.storage.layout import RunLayout

    layout = RunLayout(str(tmp_path / "run"))
    board = ClaimBoard(layout.root, "inv-l", 0, 60.0)
    assert board.folder == layout.claims_folder("inv-l") == str(tmp_path / "run" / "claims" / "inv-l")
    assert board.path(12, 1) == layout.claim("inv-l", 12, 1) == str(tmp_path / "run" / "claims" / "inv-l" / "000000012.1")
    assert board.result_path(12) == layout.hand_off("inv-l", 12) == str(
        tmp_path / "run" / "claims" / "inv-l" / "000000012.result.json")
    assert layout.user_logs_dir == str(tmp_path / "run" / "logs" / "user")
    assert RunLayout.shard_name(layout.shard_result(3)) == "00003"
