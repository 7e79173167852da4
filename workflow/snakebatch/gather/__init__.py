"""Gather: merge shard results in input order, thresholds, the life cycle of a result, the error report."""
