"""``python -m rol_hashing`` runs the command-line interface."""

from rol_hashing.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
