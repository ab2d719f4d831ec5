"""Plumbing every stage may use: atomic file writes, the quiet TensorFlow import, the version check,
progress display. Nothing here knows the course's data or models."""
