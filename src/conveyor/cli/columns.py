"""Plain aligned columns for CLI tables (never truncated, unlike a boxed table, so long task
names and times stay whole and greppable)."""

from __future__ import annotations

from collections.abc import Sequence


def aligned(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    sized_by: Sequence[Sequence[str]] | None = None,
    indent: str = "  ",
) -> list[str]:
    """The header line, then one line per row, each column padded to its widest cell (of
    `sized_by` when given, so that several blocks of one table line up)."""
    sizing = rows if sized_by is None else sized_by
    widths = [max([len(h)] + [len(r[i]) for r in sizing]) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        return indent + "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return [line(header), *(line(r) for r in rows)]
