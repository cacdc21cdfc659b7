"""Command-line interface: ``rol-hashing <command>`` / ``python -m rol_hashing``."""
