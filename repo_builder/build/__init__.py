"""The build: the per-model pipeline in worker processes, hashing for incremental builds, the repository swap."""
