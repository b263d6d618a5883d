"""How much a run's folder holds on disk: an os.scandir walk that stops once past the quota."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Usage:
    bytes: int  # allocated blocks, so a sparse file counts what it really uses
    files: int  # entries of every kind (an inode each)


def folder_usage(root: Path, *, stop_bytes: int, stop_files: int) -> Usage:
    """What `root` holds, counted until past `stop_bytes` or `stop_files` (then a lower bound).

    Symlinks are not followed; a file hard-linked twice counts once; an entry that vanishes or
    cannot be read meanwhile is skipped.
    """
    total = files = 0
    linked: set[tuple[int, int]] = set()
    folders = [str(root)]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    files += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(info.st_mode):
                        folders.append(entry.path)
                    elif info.st_nlink > 1:
                        if (info.st_dev, info.st_ino) in linked:
                            continue
                        linked.add((info.st_dev, info.st_ino))
                    total += info.st_blocks * 512
                    if total > stop_bytes or files > stop_files:
                        return Usage(total, files)
        except OSError:
            continue
    return Usage(total, files)


def size_text(count: int) -> str:
    """52.4 MB, 10 GB: decimal units, as the other limits' messages use."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"
