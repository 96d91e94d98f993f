"""Load named SQL statements from the package's `.sql` files.

A file holds statements separated by `-- name: NAME` lines; the text up to the next marker is the
statement. Keeping storage logic in `.sql` files lets a reader see a backend's whole data model
in one place.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

_MARKER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@functools.cache
def load_sql(package: str, filename: str) -> dict[str, str]:
    """Statements of `package/filename` by name. Raises KeyError-free: a missing file is a
    packaging bug and fails loudly with FileNotFoundError."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = _MARKER.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}
