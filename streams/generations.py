"""Which of a pair's columns each replica row was written with, so a backfill can fill a column
added to the pair without letting any snapshot read replace newer data.

Every distinct column list a pair has had is a generation, recorded in the target database
(`cdc_replica_generations`); each row stores the generation it was last written under
(`cdc_generation`, NULL for rows older than the record: generation 1). A snapshot read never
replaces a row, but it may set, on a row of an older generation, exactly the columns that
generation lacked: nothing of the row's own had a value from the stream yet. The row then moves
to the current generation, so a replayed read cannot set them again."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnGenerations:
    current: int
    first: dict[str, int]  # column -> the oldest generation of the unbroken run that lists it up to now

    @property
    def fillable(self) -> dict[str, int]:
        """Columns some row may still lack: a backfill's reads may fill them."""
        return {c: g for c, g in self.first.items() if g > 1}


def plan(history: Sequence[tuple[int, Sequence[str]]], columns: Sequence[str]) -> tuple[int | None, ColumnGenerations]:
    """From the recorded generations (oldest first) and the pair's columns now: the generation to
    record (None when the newest already has these columns) and what each column's rows may lack."""
    known = [(g, set(cols)) for g, cols in history]
    new: int | None = None
    if not known or known[-1][1] != set(columns):
        new = known[-1][0] + 1 if known else 1
        known.append((new, set(columns)))
    first: dict[str, int] = {}
    for column in columns:
        since = known[-1][0]
        for generation, listed in reversed(known[:-1]):
            if column not in listed:
                break
            since = generation
        first[column] = since
    return new, ColumnGenerations(known[-1][0], first)
