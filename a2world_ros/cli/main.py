"""Entry point of the `a2world` command: discovers the subcommand modules and dispatches.

Each module `a2world_ros/cli/cmd_<group>.py` defines `register(subparsers)`, adding its group
(`rig`, `sim`, `collect`, ...) with a handler stored as `func`. Handlers import heavy libraries
lazily so `a2world --help` stays fast and works without the optional extras.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

import a2world_ros.cli as cli_pkg

DESCRIPTION = """\
A2World robot stack: drive the dual-arm rig (real or its MuJoCo twin), collect demonstrations,
train and serve the world model and the policy.

Start with `a2world rig list` to see what is connected, then `a2world rig check` to read every
device without moving anything. Each subcommand has its own --help.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="a2world", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{cli_pkg.__name__}.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
