"""The ``file`` input kind: folder walks, partition per folder (``partition_format``) and the kind itself."""
