"""The stages of a run, in the order pipeline.py calls them: featurize (list, read, CNN),
basis (fit), incremental (reuse), duplicates, write, record (run.json)."""
