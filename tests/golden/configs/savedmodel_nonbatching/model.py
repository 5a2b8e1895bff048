"""Placeholder: `repo-builder render` never imports model sources."""
