"""`python -m adacode_cli` runs the CLI (also what torchrun launches)."""

from adacode_cli.cli.app import main

if __name__ == "__main__":
    main()
