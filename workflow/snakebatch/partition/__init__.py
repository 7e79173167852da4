"""Partition: the listing file, the cut into mini-batches and shards, one manifest per shard."""
