"""Reading a curated dataset: the PyTorch KeyframeDataset, a `datasets` view of whole shots, the HTML report."""
