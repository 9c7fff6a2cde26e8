"""Dataset-wide steps over a finished dataset: dedup, split, export (with the filter language), export_sakuga."""
