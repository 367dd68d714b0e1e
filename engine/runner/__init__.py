"""Runs: evaluation of a model on a dataset, the demo pipeline, ingest of run/dataset/model rows."""
