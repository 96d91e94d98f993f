"""result_compression: values above the threshold are stored compressed and read back
unchanged by any reader, whatever its own setting."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.compression import compress, decompress
from conveyor.errors import ConfigurationError, DecodeError
from conveyor.testing import solo_worker

# a realistic 100 KB result: records of the kind a sync task returns
ROWS = [
    {"id": i, "email": f"user{i}@example.com", "status": "synced", "events": [i, i * 2]}
    for i in range(1400)
]


def make_app(tmp_path: Path, **settings: Any) -> Conveyor:
    app = Conveyor("c", broker=f"sqlite:///{tmp_path / 'c.db'}", set_as_current=False)
    app.conf.update(**settings)

    @app.task(name="rows")
    def rows() -> list[dict[str, object]]:
        return ROWS

    @app.task(name="small")
    def small() -> str:
        return "ok"

    return app


@pytest.mark.parametrize("method", ["gzip", "zstd"])
def test_a_100kb_result_is_stored_compressed_and_read_back(tmp_path: Path, method: str) -> None:
    plain = len(json.dumps(ROWS, separators=(",", ":")).encode())
    assert plain > 100_000
    app = make_app(tmp_path, result_compression=method)
    big, tiny = app.tasks["rows"].delay(), app.tasks["small"].delay()
    solo_worker(app).run_until_idle()
    stored = app.results.get(big.id)
    assert stored is not None and stored.value is not None
    print(
        f"{method}: {plain} bytes stored as {len(stored.value)} ({plain / len(stored.value):.1f}×)"
    )
    assert len(stored.value) < plain / 5
    reader = make_app(tmp_path)  # another process, without the setting, reads it the same
    assert reader.AsyncResult(big.id).get(timeout=5) == ROWS
    small_value = app.results.get(tiny.id).value  # type: ignore[union-attr]
    assert small_value == b'"ok"'  # under the threshold: stored as it is


def test_values_that_do_not_shrink_are_kept_as_they_are() -> None:
    noise = os.urandom(2048)
    assert compress(noise, "gzip", 16) == noise
    assert decompress(b'{"a": 1}') == b'{"a": 1}'
    with pytest.raises(DecodeError, match="could not be decompressed"):
        decompress(b"\x1f\x8bnot gzip at all")


def test_unknown_methods_are_refused() -> None:
    app = Conveyor("c", broker="memory://", set_as_current=False)
    with pytest.raises(ConfigurationError, match="use None, 'gzip' or 'zstd'"):
        app.conf.result_compression = "bzip2"


def _zstd(data: bytes, **options: Any) -> bytes:
    import zstandard

    return bytes(zstandard.ZstdCompressor(level=3, **options).compress(data))


def test_several_members_or_frames_read_as_their_concatenation() -> None:
    import gzip

    first, second = json.dumps(ROWS[:700]).encode(), json.dumps(ROWS[700:]).encode()
    for packed in (
        gzip.compress(first) + gzip.compress(second),
        _zstd(first) + _zstd(second),
        _zstd(first, write_content_size=False) + _zstd(second, write_checksum=True),
    ):
        assert decompress(packed) == first + second
    with pytest.raises(DecodeError, match="inflates to more than"):
        decompress(_zstd(first) + _zstd(second), limit=len(first) + len(second) - 1)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda z: z[:-7], "cut off"),  # the last block is cut short
        (lambda z: z + z[:9], "cut off"),  # a second frame with a header only
        (lambda z: z + b"{}", "bytes after its last zstd frame are not a zstd frame"),
        (lambda z: z[:12] + bytes(len(z) - 12), "corrupt"),  # zeroed blocks
        (lambda z: z[:9] + b"\xff" * (len(z) - 9), "corrupt"),  # a reserved block type
    ],
    ids=["truncated", "header-only-frame", "trailing-bytes", "zeroed", "reserved-block"],
)
def test_damaged_zstd_values_raise_decode_error_saying_what_to_do(damage: Any, reason: str) -> None:
    import zstandard

    packed = damage(_zstd(json.dumps(ROWS).encode(), write_checksum=True))
    with pytest.raises(DecodeError, match=reason) as raised:
        decompress(packed)
    assert "run the call again" in str(raised.value)
    assert not isinstance(raised.value, zstandard.ZstdError)


def test_a_corrupt_zstd_result_reaches_the_caller_as_decode_error(tmp_path: Path) -> None:
    app = make_app(tmp_path, result_compression="zstd", result_compression_threshold=64)
    call = app.send_task("rows")
    solo_worker(app).run_until_idle()
    stored = app.results.get(call.id)
    assert stored is not None and stored.value is not None
    assert stored.value[:4] == b"\x28\xb5\x2f\xfd"  # stored as a zstd frame
    half = len(stored.value) // 2
    spoiled = stored.value[:half] + bytes(len(stored.value) - half)  # corrupt, not cut off
    app.results.put([dataclasses.replace(stored, value=spoiled)])
    with pytest.raises(DecodeError, match="could not be decompressed"):
        app.AsyncResult(call.id).get(timeout=5)
    app.close()
