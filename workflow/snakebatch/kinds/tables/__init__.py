"""The ``tabular`` input kind: the byte cutter and reader for CSV/TSV/JSON Lines/Parquet, and the kind itself."""
