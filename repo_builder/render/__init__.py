"""Render: the Jinja environment and config.pbtxt rendering, every config parsed back with Triton's ModelConfig."""
