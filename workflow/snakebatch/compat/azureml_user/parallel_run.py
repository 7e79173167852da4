from snakebatch.infer.entry import EntryScript  # noqa: F401  (ParallelRunStep compatibility)
