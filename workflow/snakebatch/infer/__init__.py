"""Infer: the shard job, which runs every mini-batch of one shard manifest through a supervised worker."""
