"""Coping exercises: runs of content modules, step by step."""
