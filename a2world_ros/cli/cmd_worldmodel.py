"""`a2world worldmodel ...`: world-model tools (checkpoint inspection; training and prediction slot in here).

Each subcommand is one `_add_<name>(sub)` function listed in `SUBCOMMANDS`; handlers import torch and
the model code lazily so `a2world --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

GROUP_HELP = "world model: inspect checkpoints (official A2World .pt or our safetensors)"
GROUP_DESCRIPTION = """\
World-model tools. A checkpoint is either an official release file (a2world-pretrained.pt,
a2world-libero.pt; loaded with torch.load(weights_only=True, mmap=True)) or one of ours (a directory
with model.safetensors and config.yaml, or the model.safetensors file itself).

Example:
  a2world worldmodel inspect checkpoints/a2world-pretrained.pt
"""


def _cmd_inspect(args: argparse.Namespace) -> int:
    from worldmodel.checkpoint import CheckpointError, inspect_checkpoint

    try:
        report = inspect_checkpoint(args.file)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
        return 0
    dtypes = ", ".join(f"{name} ({count} tensors)" for name, count in sorted(report.dtypes.items()))
    print(f"file:        {report.path}")
    print(f"format:      {report.format}")
    print(f"variant:     {report.variant}"
          + ("" if report.variant == "a2world" else "  (history-aware A2World-sim / libero)"))
    print(f"dtype:       {dtypes}")
    print(f"keys:        {report.n_keys}")
    print(f"parameters:  {report.n_parameters:,}")
    print(f"buffers:     {report.n_buffer_elements:,} elements (RoPE tables)")
    if report.matches:
        print(f"config:      matches {', '.join(report.matches)} (config/worldmodel/net/)")
    else:
        print("config:      no known config matches")
        if report.closest:
            print(f"closest:     {report.closest}: {report.closest_diff}")
    return 0 if report.matches or not args.require_match else 2


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="report variant, dtype, parameter count and matching config of a checkpoint",
        description="Read a checkpoint's tensor names, shapes and dtypes (without loading the weights "
                    "into a model) and compare them with the network configs in config/worldmodel/net/.",
    )
    p.add_argument("file", help="official .pt, our model.safetensors, or a directory holding it")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--require-match", action="store_true",
                   help="exit with status 2 when no known config matches")
    p.set_defaults(func=_cmd_inspect)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_inspect]
"""Subcommand builders; `train` and `predict` are appended here by their modules' functions."""


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("worldmodel", help=GROUP_HELP, description=GROUP_DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    group.set_defaults(func=lambda a: group.print_help() or 0)
    sub = group.add_subparsers(dest="worldmodel_command", metavar="SUBCOMMAND")
    for add in SUBCOMMANDS:
        add(sub)
