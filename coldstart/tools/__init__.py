"""Command-line entry points and speed benchmarks (``python -m coldstart.tools.<name>``)."""
