"""Storage: locations (local paths and fsspec URLs), atomic writes and uploads, and the run layout."""
