"""The `tribune` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4
EXIT_REFUSED = 5

EPILOG = """exit codes:
  0  ok
  2  invalid input (usage, bad profile or config)
  3  authentication failed
  4  no reply / device unreachable
  5  the device refused the command
"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subcommand per task."""
    parser = argparse.ArgumentParser(
        prog="tribune",
        description="Room control for classrooms: drive projectors, boards and switchers.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from tribune.sim.cli import add_sim_parser

    add_sim_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    code: int = handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
