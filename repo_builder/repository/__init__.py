"""The repository on disk: layout (every file name), manifest, staging and the atomic swap, writing model folders."""
