"""Data rights: export, erasure, retention and discharge."""
