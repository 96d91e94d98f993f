"""Compression of stored results (`result_compression`).

Values at least `result_compression_threshold` bytes long are compressed with gzip or zstd
when a worker stores them. Readers need no setting: a stored value says what it is by its first
bytes — gzip and zstd frames start with magic numbers that no JSON text can start with — so
an app reading results decompresses whatever it finds, whichever worker wrote it.

Decompression is capped: a value is inflated a bounded piece at a time and refused (DecodeError)
as soon as it passes the reader's `result_max_size`, which no value a worker stored can pass —
workers refuse to store larger return values — so a corrupt or hostile stored value cannot make
a reader allocate more than that.
"""

from __future__ import annotations

import zlib
from typing import Any

from .errors import ConfigurationError, DecodeError

METHODS = ("gzip", "zstd")
#: The default `result_max_size`, and the cap of readers not told another.
DEFAULT_LIMIT = 16 * 1024 * 1024
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
    packed = _gzip(data) if method == "gzip" else _zstd().ZstdCompressor(level=3).compress(data)
    return packed if len(packed) < len(data) else data


def _gzip(data: bytes) -> bytes:
    import gzip  # imported when used: most apps never compress

    return gzip.compress(data, compresslevel=6, mtime=0)


def decompress(data: bytes, limit: int = DEFAULT_LIMIT) -> bytes:
    """The original bytes of a stored value, compressed or not. A compressed value that would
    inflate past `limit` bytes raises DecodeError without being inflated further, and so does
    one that is damaged: cut off, corrupt, or followed by bytes that are not another member or
    frame. Several gzip members, or several zstd frames, one after another (what concatenating
    compressed files gives) are read as the concatenation of their contents."""
    try:
        if data[:2] == _GZIP_MAGIC:
            return _gunzip(data, limit)
        if data[:4] == _ZSTD_MAGIC:
            return _unzstd(data, limit)
    except DecodeError:
        raise
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise _damaged(str(exc)) from None
    return data


def _gunzip(data: bytes, limit: int) -> bytes:
    out = bytearray()
    while data:  # a gzip file may hold several members, one after another
        inflater = zlib.decompressobj(wbits=31)
        out += inflater.decompress(data, limit + 1 - len(out))
        if len(out) > limit:
            raise _too_large(limit)
        if not inflater.eof:
            raise _damaged("its gzip data is cut off")
        data = inflater.unused_data
    return bytes(out)


def _unzstd(data: bytes, limit: int) -> bytes:
    zstandard = _zstd()
    try:
        declared = _zstd_frames(zstandard, memoryview(data))
        if declared > limit:
            raise _too_large(limit)
        out = bytearray()
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
            while len(out) <= limit:
                chunk = reader.read(limit + 1 - len(out))
                if not chunk:
                    break
                out += chunk
    except zstandard.ZstdError as exc:
        raise _damaged(f"its zstd data is corrupt ({exc})") from None
    if len(out) > limit:
        raise _too_large(limit)
    if declared >= 0 and len(out) != declared:
        raise _damaged(f"its zstd frames declare {declared} bytes but hold {len(out)}")
    return bytes(out)


def _zstd_frames(zstandard: Any, data: memoryview) -> int:
    """Walk the zstd frames of `data` by their headers, without inflating anything: the sum of
    the sizes they declare (-1 when a frame does not say). DecodeError unless `data` is whole
    frames back to back: cut off, or followed by bytes that are not a frame."""
    total, pos = 0, 0
    while pos < len(data):
        if data[pos : pos + 4] != _ZSTD_MAGIC:
            raise _damaged("bytes after its last zstd frame are not a zstd frame")
        frame = zstandard.get_frame_parameters(data[pos:])
        pos += zstandard.frame_header_size(data[pos:])
        last = False
        while not last:  # block headers: 3 bytes, little-endian: last, type, size
            if pos + 3 > len(data):
                raise _damaged("its zstd data is cut off")
            header = int.from_bytes(data[pos : pos + 3], "little")
            last, kind, size = bool(header & 1), (header >> 1) & 3, header >> 3
            if kind == 3:
                raise _damaged("its zstd data is corrupt (a reserved block type)")
            pos += 3 + (1 if kind == 1 else size)  # an RLE block holds one byte
        pos += 4 if frame.has_checksum else 0
        if pos > len(data):
            raise _damaged("its zstd data is cut off")
        known = total >= 0 and frame.content_size != zstandard.CONTENTSIZE_UNKNOWN
        total = total + frame.content_size if known else -1
    return total


def _damaged(why: str) -> DecodeError:
    return DecodeError(
        f"a stored result could not be decompressed: {why}. The stored value is damaged or was "
        "not written by conveyor: run the call again to store its result anew, or forget it "
        "(AsyncResult.forget())"
    )


def _too_large(limit: int) -> DecodeError:
    return DecodeError(
        f"a stored result inflates to more than {limit} bytes when decompressed (setting "
        "result_max_size); it was not read. No worker stores a larger value, so it is damaged "
        "or was not written by conveyor — or raise result_max_size where it is read"
    )
