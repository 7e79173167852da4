"""Output formats of ``append_row``: encoding a result, writing the merged file, reading it back."""
