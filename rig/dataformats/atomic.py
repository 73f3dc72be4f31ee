"""Crash-safe file updates: atomic single-file writes and a redo journal for multi-file commits.

A commit first writes every new file under a temporary name next to its final name (same directory,
so `rename` is atomic), fsyncs them, then writes the journal (the list of renames) atomically. Once
the journal exists the commit is decided: the renames are done and the journal removed. After a
crash, `recover` redoes the renames of a journal that exists (each rename is idempotent) and deletes
temporary files of a commit that never reached its journal. A reader that may run while a commit is
unfinished (a recorder killed between two renames, or still renaming) reads through `JournalView`:
each final name of a pending journal resolves to its staged file while that still exists, so the
reader sees the whole decided commit, never a mix of two commits, and needs no write access.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

LOG = logging.getLogger(__name__)
TMP_MARK = ".tmp-"
JOURNAL_NAME = ".commit-journal.json"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync a file, or every file and directory below a directory."""
    if path.is_dir():
        for sub in sorted(path.rglob("*")):
            if sub.is_file():
                with open(sub, "rb") as fh:
                    os.fsync(fh.fileno())
        for sub in sorted((p for p in path.rglob("*") if p.is_dir()), reverse=True):
            fsync_dir(sub)
        fsync_dir(path)
    else:
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def tmp_name(final: Path, tag: str) -> Path:
    """Temporary sibling of `final` that `recover` recognises and `commit` renames."""
    return final.with_name(f"{final.name}{TMP_MARK}{tag}")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically (tmp file, fsync, rename, fsync directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path, "w")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def commit(root: Path, renames: Iterable[tuple[Path, Path]]) -> None:
    """Atomically move every `(tmp, final)` pair (files or directories) into place."""
    pairs = [(Path(a), Path(b)) for a, b in renames]
    for tmp, _ in pairs:
        if not tmp.exists():
            raise FileNotFoundError(f"commit: staged file {tmp} does not exist")
        fsync_tree(tmp)
    for parent in {tmp.parent for tmp, _ in pairs}:
        fsync_dir(parent)
    journal = [[str(a.relative_to(root)), str(b.relative_to(root))] for a, b in pairs]
    write_atomic(root / JOURNAL_NAME, json.dumps(journal).encode())
    _apply(root, journal)


def _apply(root: Path, journal: list[list[str]]) -> None:
    for rel_tmp, rel_final in journal:
        tmp, final = root / rel_tmp, root / rel_final
        if tmp.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            if tmp.is_dir() and final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            fsync_dir(final.parent)
    (root / JOURNAL_NAME).unlink(missing_ok=True)
    fsync_dir(root)


def recover(root: Path) -> list[str]:
    """Finish a decided commit or remove the leftovers of an undecided one; returns what was done."""
    notes: list[str] = []
    journal_file = root / JOURNAL_NAME
    if journal_file.is_file():
        try:
            journal = json.loads(journal_file.read_text())
        except (OSError, ValueError):
            journal = None  # a torn journal write never got renamed into place; cannot happen via write_atomic
        if journal is not None:
            _apply(root, journal)
            notes.append(f"completed an interrupted commit of {len(journal)} file(s)")
    for leftover in sorted(root.rglob(f"*{TMP_MARK}*")):
        if leftover.exists():
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
            notes.append(f"removed uncommitted {leftover.relative_to(root)}")
    for note in notes:
        LOG.warning("%s: %s", root, note)
    return notes


class JournalView:
    """Read-only view of a tree as of its last decided commit (see the module doc).

    `find(root)` looks for a pending journal in `root` and up to `levels` parents (a LeRobot dataset
    lives in `<recording root>/lerobot`, the journal in the recording root). With no journal every
    path resolves to itself.
    """

    def __init__(self, pending: dict[Path, Path] | None = None) -> None:
        self.pending = dict(pending or {})
        """final path -> staged path of the journal's renames."""

    @classmethod
    def find(cls, root: Path, levels: int = 2) -> JournalView:
        base = Path(root).resolve()
        for directory in [base, *list(base.parents)[:levels]]:
            journal_file = directory / JOURNAL_NAME
            if journal_file.is_file():
                try:
                    journal = json.loads(journal_file.read_text())
                except (OSError, ValueError):
                    continue  # cannot be torn (write_atomic); vanished: the commit just finished
                return cls({directory / final: directory / tmp for tmp, final in journal})
        return cls()

    def path(self, final: Path) -> Path:
        """Where `final`'s committed content is now: its staged file while that exists, else itself."""
        staged = self.pending.get(Path(final).resolve())
        return staged if staged is not None and staged.exists() else Path(final)

    def glob(self, directory: Path, pattern: str) -> list[Path]:
        """Final names under `directory` matching `pattern`, including those still staged; sorted."""
        directory = Path(directory).resolve()
        names = {p.resolve() for p in directory.glob(pattern) if TMP_MARK not in p.name}
        names |= {final for final, staged in self.pending.items()
                  if staged.exists() and final.is_relative_to(directory)
                  and final.relative_to(directory).match(pattern)}
        return sorted(names)
