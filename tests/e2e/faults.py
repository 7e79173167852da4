"""A fault-injecting entry script for the e2e fault suite: files item000.txt.. holding i*i (as in
squares.py), and a seeded schedule (JSON, ``$FAULT_SCHEDULE``) that decides, per item and per
call of run() that holds it, whether that call raises, hangs, ends its worker with ``os._exit``,
SIGKILLs its own worker, or returns the wrong type. The calls that held an item are counted in
``$FAULT_ATTEMPTS/<item>`` (one byte per call, O_APPEND), across workers and runs.

``transient`` faults hit an item's first calls only: it succeeds in the end. ``permanent``
faults hit every call: the item fails every try and is the only thing missing from the output."""

import json
import random

from helpers import write

ACTIONS = ("raise", "hang", "exit", "sigkill", "wrongtype")
PERMANENT_ACTIONS = ("raise", "exit", "sigkill", "wrongtype")   # a permanent hang would cost minutes
# the exception errors.jsonl names for an item failing every try with each permanent action
EXCEPTION_OF = {"raise": "ValueError", "exit": "WorkerDied", "sigkill": "WorkerDied", "wrongtype": "ResultTypeError"}

SCRIPT = """
    import json, os, signal, time

    SCHEDULE = json.load(open(os.environ["FAULT_SCHEDULE"]))

    def _calls_before(name):
        path = os.path.join(os.environ["FAULT_ATTEMPTS"], name)
        with open(path, "ab") as handle:
            handle.write(b"x")
            handle.flush()
            return os.fstat(handle.fileno()).st_size - 1

    def run(mini_batch):
        fault = None
        for path in mini_batch:
            name = os.path.basename(path)
            before = _calls_before(name)
            transient = SCHEDULE["transient"].get(name, [])
            action = SCHEDULE["permanent"].get(name) or (transient[before] if before < len(transient) else None)
            fault = fault or action
        time.sleep(float(os.environ.get("FAULT_DELAY", "0")))
        if fault == "raise":
            raise ValueError("scheduled fault in " + ",".join(os.path.basename(p) for p in mini_batch))
        if fault == "hang":
            time.sleep(3600)
        if fault == "exit":
            os._exit(3)
        if fault == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "wrongtype":
            return {"not": "a list"}
        return [os.path.basename(p) + ": " + open(p).read().strip() for p in mini_batch]
"""


def schedule(seed, n, permanent=4, transient=8, hangs=1):
    """A random fault schedule over items 0..n-1 (names item000.txt..): ``permanent`` items fail
    every call (PERMANENT_ACTIONS in a random order, each once before any repeats), ``transient`` others fail their first 1-2
    calls (at most ``hangs`` hangs in all). Returns the schedule as the script reads it."""
    rng = random.Random(seed)
    names = [f"item{i:03d}.txt" for i in range(n)]
    chosen = rng.sample(names, permanent + transient)
    hangs_left = hangs
    plan = {"permanent": {}, "transient": {}}
    actions_cycle = rng.sample(PERMANENT_ACTIONS, len(PERMANENT_ACTIONS))   # each permanent action once first
    for number, name in enumerate(chosen[:permanent]):
        plan["permanent"][name] = actions_cycle[number % len(actions_cycle)]
    for name in chosen[permanent:]:
        actions = []
        for _ in range(rng.randint(1, 2)):
            action = rng.choice(ACTIONS if hangs_left else PERMANENT_ACTIONS)
            hangs_left -= action == "hang"
            actions.append(action)
        plan["transient"][name] = actions
    return plan


def setup(workflow, plan, n=24, **config):
    """Write the dataset, the script and ``plan`` into ``workflow``; configure run ``sq``."""
    for i in range(n):
        write(workflow.path("data", f"item{i:03d}.txt"), f"{i * i}\n")
    write(workflow.path("scripts", "faulty.py"), SCRIPT)
    write(workflow.path("schedule.json"), json.dumps(plan))
    env = {"FAULT_SCHEDULE": workflow.path("schedule.json"), "FAULT_ATTEMPTS": workflow.path("attempts"),
           **config.pop("environment_variables", {})}
    import os

    os.makedirs(workflow.path("attempts"), exist_ok=True)
    workflow.write_config({"run_name": "sq", "input": {"path": "data", "pattern": "*.txt"},
                           "entry_script": "faulty.py", "source_directory": "scripts", "mini_batch_size": 4,
                           "append_row_file_name": "out.txt", "run_invocation_timeout": 3, "run_max_try": 3,
                           "environment_variables": env, **config})
