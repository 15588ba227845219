"""Overlapping exports: rows of a source's later files that repeat rows of its earlier files.

A retailer that sends "the last eight days" every week, or a month's file that starts a day early, sends some
lines twice. Read as they come, each such line would count twice: twice the spend, twice the purchase. When a
source reads several files (a glob), a row of a later file that is identical, field by field as read, to a row
of an earlier file is a repeat: it goes to the quarantine with the earlier file named, and the counts still
add up (read = loaded + quarantined).

A row may legitimately occur more than once in one file (two identical lines on one receipt): each distinct row
is kept as many times as the one file holding it most often has it. Repeats within a single file are never
touched, and a source of one file is read as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.ingest.quarantine import raw_json, rejected_rows
from features.ingest.readers import RawChunk

REASON = "repeats a row of an earlier file of this source: {file} (overlapping exports)"


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row over every field as read, in column-name order (a file may order them otherwise)."""
    columns = sorted(frame.columns, key=str)
    return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy(np.uint64)


def _look_up(keys: np.ndarray, values: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """For each hash, its value in sorted `keys` (0 when `keys` does not hold it)."""
    if not len(keys):
        return np.zeros(len(hashes), values.dtype)
    at = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
    return np.where(keys[at] == hashes, values[at], 0)


def _combined(
    keys: np.ndarray, values: np.ndarray, more_keys: np.ndarray, more_values: np.ndarray, how: np.ufunc
) -> tuple[np.ndarray, np.ndarray]:
    """Two sorted key sets merged, the values of a key present in both combined by `how` (np.add, np.maximum)."""
    every = np.concatenate([keys, more_keys])
    order = np.argsort(every, kind="stable")
    every, both = every[order], np.concatenate([values, more_values])[order]
    unique, starts = np.unique(every, return_index=True)
    return unique, how.reduceat(both, starts) if len(both) else both


class RepeatedRows:
    """Splits the repeats of earlier files off each chunk of a source's files, read in order.

    Holds sorted row hashes, not rows: for the earlier files each distinct row's largest count in one file and
    the first file holding it; for the file being read, each row's count so far.
    """

    def __init__(self) -> None:
        self.files: list[str] = []
        self.earlier = (np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, np.int64))
        self.current = (np.empty(0, np.uint64), np.empty(0, np.int64))

    def _start(self, file: str | None) -> None:
        """Fold the file read so far into the earlier files' counts; `file` is read next."""
        keys, counts = self.current
        if len(keys):
            earlier_keys, earlier_counts, earlier_file = self.earlier
            merged, largest = _combined(earlier_keys, earlier_counts, keys, counts, np.maximum)
            index = np.full(len(keys), len(self.files) - 1, np.int64)
            _, first_file = _combined(earlier_keys, earlier_file, keys, index, np.minimum)
            self.earlier = (merged, largest, first_file)
        self.files.append(file or "")
        self.current = (np.empty(0, np.uint64), np.empty(0, np.int64))

    def split_off(self, chunk: RawChunk) -> RawChunk:
        """The chunk without the rows that repeat an earlier file's; those rows join its rejected rows."""
        if not self.files or chunk.file != self.files[-1]:
            self._start(chunk.file)
        if not len(chunk.frame):
            return chunk
        hashes = _row_hashes(chunk.frame)
        # Each row's occurrence in this file: the earlier chunks' count plus its rank among equal rows here.
        before = _look_up(*self.current, hashes)
        nth = before + pd.Series(hashes).groupby(hashes).cumcount().to_numpy() + 1
        unique, counts = np.unique(hashes, return_counts=True)
        self.current = _combined(*self.current, unique, counts.astype(np.int64), np.add)
        allowed = _look_up(self.earlier[0], self.earlier[1], hashes)
        repeat = nth <= allowed
        if not repeat.any():
            return chunk
        first_file = _look_up(self.earlier[0], self.earlier[2], hashes[repeat])
        repeated = chunk.frame[repeat]
        reasons = [REASON.format(file=self.files[i]) for i in first_file]
        rejected = rejected_rows(repeated.index, [None] * len(repeated), reasons, raw_json(repeated))
        both = pd.concat([chunk.rejected, rejected]) if len(chunk.rejected) else rejected
        return RawChunk(
            chunk.frame[~repeat],
            both.sort_values("source_row", kind="stable").reset_index(drop=True),
            chunk.file,
            chunk.rows_read,
        )
