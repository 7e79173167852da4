"""The bundled demo's config (``config/demo.yaml``), applied only where it belongs.

Snakemake merges every config it is given (the workflow's ``configfile:``, ``--configfile``,
``--config``) into one dict, so dataset-specific demo keys in ``config/config.yaml`` would leak
into a user's run. The demo's keys live in their own file instead and fill in a config that gives
no ``input`` (the demo runs with no arguments), or whose ``input.path`` lies in the demo's data
folder (a resubmit of the demo on other demo images); a config with its own input gets none.
"""

from __future__ import annotations

import copy
import os

DEMO_DATA = os.path.join("resources", "demo")
# what the workflow's demo rules build (workflow/rules/demo.smk), relative to the working directory:
# the digits as PNG files with labels.csv, the Keras model, the same MLP as a TF1 checkpoint
DEMO_IMAGES = "resources/demo/mnist"
DEMO_MODEL = "resources/demo/model"
DEMO_TF1_MODEL = "resources/demo/model-tf1"


def _in_demo_data(path) -> bool:
    paths = path if isinstance(path, list) else [path]
    return bool(paths) and all(
        isinstance(p, str) and os.path.normpath(p).split(os.sep)[:2] == DEMO_DATA.split(os.sep) for p in paths)


def uses_demo(config: dict) -> bool:
    """True when ``config`` (the merged config) is the demo's: no ``input``, or an ``input`` whose
    ``path`` is only demo data (``resources/demo/...``)."""
    given = config.get("input")
    if given is None:
        return True
    return isinstance(given, dict) and _in_demo_data(given.get("path"))


def with_demo_defaults(config: dict, demo: dict) -> dict:
    """``config`` with the ``demo`` config's keys filled in where ``config`` has none (``input``
    merged key by key), when ``uses_demo(config)``; else ``config`` unchanged. Returns a new dict."""
    if not uses_demo(config):
        return config
    merged = copy.deepcopy(demo)
    for key, value in config.items():
        if key == "input" and isinstance(value, dict) and isinstance(merged.get("input"), dict):
            merged["input"] = {**merged["input"], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged
