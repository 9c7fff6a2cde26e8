"""Per-source stages (download, analyze, annotate, clips): each takes one item and returns the next."""
