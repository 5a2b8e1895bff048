"""Inspect: a model's signature -> tensors (TensorFlow only in sources.py), and their resolution against
the spec (resolve.py, no TensorFlow)."""
