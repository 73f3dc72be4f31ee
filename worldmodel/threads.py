"""The torch thread count of every command that computes (trainers, encoders, inference, evaluation).

torch's default intra-op pool uses every logical CPU and spins while it waits; on a small shared machine
(2 cores, other processes busy) that oversubscribes the cores and runs 10-40x slower than one thread per
physical core. One rule for every command: an explicit value from the config or the command line wins, the
environment variable ``A2WORLD_THREADS`` overrides a config default, and ``auto`` (or null/0) means the
number of physical cores this process may run on.
"""

from __future__ import annotations

import argparse
import contextlib
import os

ENV_VAR = "A2WORLD_THREADS"


def physical_cores() -> int:
    """Physical cores available to this process (logical CPUs in its affinity mask / SMT siblings)."""
    try:
        logical_allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        logical_allowed = os.cpu_count() or 1
    logical_total = os.cpu_count() or logical_allowed
    try:
        import psutil

        physical_total = psutil.cpu_count(logical=False) or logical_total
    except ImportError:
        physical_total = logical_total
    smt = max(1, round(logical_total / max(1, physical_total)))
    return max(1, logical_allowed // smt)


def resolve_threads(requested: int | str | None, *, source: str = "threads") -> int:
    """The thread count to use: ``requested`` (int, numeric string, ``auto``, null or 0), env override.

    The environment variable wins over ``auto``/null (a config default) but not over an explicit number,
    so ``A2WORLD_THREADS=1 a2world ...`` tunes every command at once while a deliberate setting stays.
    """
    env = os.environ.get(ENV_VAR)
    value: int | str | None = requested
    if isinstance(value, bool):
        raise ValueError(f"{source}: {value!r} is a bool, expected a positive integer or 'auto'")
    if value in (None, 0, "", "auto", "0"):
        value = env if env not in (None, "") else "auto"
        source = ENV_VAR if env not in (None, "") else source
    if value == "auto":
        return physical_cores()
    try:
        count = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{source}: {value!r} is not a thread count, expected a positive integer or 'auto'") from None
    if count < 1 or count > 1024:
        raise ValueError(f"{source}: {count} threads, expected 1..1024 or 'auto'")
    return count


def configure_torch_threads(requested: int | str | None = None, *, source: str = "threads") -> int:
    """Set torch's intra-op (and, once per process, inter-op) thread count; returns the count used."""
    import torch

    count = resolve_threads(requested, source=source)
    torch.set_num_threads(count)
    # The inter-op pool can be sized only before its first use in a process.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(max(1, min(count, 2)))
    return count


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """`--threads N|auto` on a command that computes; pass `args.threads` to `configure_torch_threads`."""
    parser.add_argument("--threads", default=None, metavar="N|auto",
                        help=f"torch intra-op threads (default: ${ENV_VAR}, else auto = physical cores)")
