"""The Snakemake side of snakebatch: what the rule files (``workflow/rules/*.smk``) call.

``facts``: what one snakemake invocation was asked to do (dry run, cores, ``--report``), read once
from Snakemake's workflow object. ``invocation``: the plan of the invocation, the parse-time dataset
listing, the stages' spec digests and every value the rules declare. ``hooks``: what runs when the
jobs start, succeed or fail, and the one adapter that adds them to a user's Snakefile that uses
this workflow as a module.
"""
