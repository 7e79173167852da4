"""monitor.interrupts: a SIGTERM to the main snakemake process is remembered, passed on, and
handed to Snakemake's own handler without deadlocking the main thread."""

import subprocess
import sys

CODE = r"""
import os, signal, threading, time
from snakebatch.monitor import interrupts

lock = threading.Lock()          # Snakemake's scheduler semaphore's lock, as its handler takes it
ran = []

def snakemakes_handler(number, frame):
    with lock:
        ran.append(number)

signal.signal(signal.SIGTERM, snakemakes_handler)
interrupts.forward_terminate()
with lock:                       # the main thread is inside that lock when the signal comes
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)
deadline = time.time() + 5
while not ran and time.time() < deadline:
    time.sleep(0.01)
print(ran, interrupts.interrupted())
"""


def test_a_sigterm_reaches_snakemakes_handler_even_while_the_main_thread_holds_its_lock():
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[15] True\n"
