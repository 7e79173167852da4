from snakebatch.entry import EntryScript  # noqa: F401  (ParallelRunStep compatibility)
