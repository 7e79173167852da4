"""Monitor: progress records, the live view, the status command and the HTML report."""
