"""Compression of stored results (`result_compression`).

Values at least `result_compression_threshold` bytes long are compressed with gzip or zstd
when a worker stores them. Readers need no setting: a stored value says what it is by its first
bytes — gzip and zstd frames start with magic numbers that no JSON text can start with — so
an app reading results decompresses whatever it finds, whichever worker wrote it.
"""

from __future__ import annotations

import gzip
from typing import Any

from .errors import ConfigurationError, DecodeError

METHODS = ("gzip", "zstd")
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise ConfigurationError(
            "result_compression='zstd' needs the zstandard package: pip install 'conveyor[zstd]'"
        ) from None
    return zstandard


def check_method(name: str, value: Any) -> str | None:
    """A valid `result_compression`: None, 'gzip' or 'zstd' (which must be importable)."""
    if value is None:
        return None
    if value not in METHODS:
        raise ConfigurationError(f"{name}={value!r}: use None, 'gzip' or 'zstd'")
    if value == "zstd":
        _zstd()
    return str(value)


def compress(data: bytes, method: str | None, threshold: int) -> bytes:
    """`data` compressed with `method` when it is at least `threshold` bytes and compression
    makes it smaller; otherwise `data` as it is."""
    if method is None or len(data) < threshold:
        return data
    if method == "gzip":
        packed = gzip.compress(data, compresslevel=6, mtime=0)
    else:
        packed = _zstd().ZstdCompressor(level=3).compress(data)
    return packed if len(packed) < len(data) else data


def decompress(data: bytes) -> bytes:
    """The original bytes of a stored value, compressed or not."""
    try:
        if data[:2] == _GZIP_MAGIC:
            return gzip.decompress(data)
        if data[:4] == _ZSTD_MAGIC:
            return bytes(_zstd().ZstdDecompressor().decompress(data))
    except (OSError, EOFError, ValueError) as exc:
        raise DecodeError(f"a stored result could not be decompressed: {exc}") from None
    return data
