"""Reading a curated dataset: the torch datasets and the static HTML report."""
