"""Verify: generate inputs, run the source and the artifact, compare; ensembles' reference vectors."""
