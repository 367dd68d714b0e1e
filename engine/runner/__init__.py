"""Batch runs (``python -m engine run`` / ``demo``): experiments, job keys, units of work and their typed
results, executors, the driver, ingest of run / dataset / model / summary rows, dry run, scheduling."""
