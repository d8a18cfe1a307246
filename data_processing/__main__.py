"""`python -m data_processing ...`: see data_processing/cli.py or `--help`."""

from data_processing.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
