"""Celery's Canvas guide (docs/userguide/canvas.rst) and the callbacks of its Calling guide, run
as written there (renames only) against a real worker, asserting the results the guide gives."""

from __future__ import annotations

import json
from pathlib import Path

from .harness import Worker, produce, project, wait_until, worker

WORKER = ("-A", "proj", "worker", "-Q", "celery,default", "-l", "INFO")


def run(url: str, code: str) -> dict[str, object]:
    """Run a producer in the project; it prints one JSON object."""
    out = produce(project("canvas"), url, "import json\n" + code)
    found: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return found


def test_signatures_partials_and_invert(compat_url: str) -> None:
    with worker(project("canvas"), compat_url, *WORKER) as proc:
        out = run(
            compat_url,
            """
from conveyor import signature
from proj.tasks import add

out = {}
out["inline"] = add.s(2, 2)()
partial = add.s(2)          # incomplete signature
out["partial"] = partial.delay(4).get(timeout=30)            # 4 + 2
out["partial_apply"] = partial.apply_async((4,)).get(timeout=30)  # same
s = add.signature((2, 2), countdown=10)
out["options"] = s.options
out["countdown_now_1"] = s.apply_async(countdown=1).get(timeout=30)
out["by_name"] = signature('proj.tasks.add', args=(2, 2), countdown=1).delay().get(timeout=30)
out["clone"] = repr(add.s(2).clone(args=(4,), kwargs={'debug': True}))
out["invert"] = ~add.s(2, 2)
out["immutable"] = add.si(2, 2).delay(100).get(timeout=30)
print(json.dumps(out))
""",
        )
        assert out == {
            "inline": 4,
            "partial": 6,
            "partial_apply": 6,
            "options": {"countdown": 10},
            "countdown_now_1": 4,
            "by_name": 4,
            "clone": "proj.tasks.add(4, 2, debug=True)",
            "invert": 4,
            "immutable": 4,
        }, proc.log()


def test_the_primitives_as_the_canvas_guide_calls_them(compat_url: str) -> None:
    with worker(project("canvas"), compat_url, *WORKER) as proc:
        out = run(
            compat_url,
            """
from conveyor import chain, chord, group
from proj.tasks import add, mul, tsum

out = {}
res = chain(add.s(2, 2), add.s(4), add.s(8))()
out["chain"] = res.get(timeout=30)                                   # 2 + 2 + 4 + 8
out["pipe"] = (add.s(2, 2) | add.s(4) | add.s(8))().get(timeout=30)
res = (add.si(2, 2) | add.si(4, 4) | add.si(8, 8))()
out["immutable"] = [res.get(timeout=30), res.parent.get(timeout=30),
                    res.parent.parent.get(timeout=30)]
out["group"] = group(add.s(i, i) for i in range(10))().get(timeout=30)
out["chord"] = chord((add.s(i, i) for i in range(10)), tsum.s())().get(timeout=30)
c1 = (add.s(4) | mul.s(8))
out["c1"] = c1(16).get(timeout=30)
c2 = (add.s(4, 16) | mul.s(2) | (add.s(4) | mul.s(8)))
out["c2"] = c2().get(timeout=30)
c3 = (group(add.s(i, i) for i in range(10)) | tsum.s())
out["c3"] = c3().get(timeout=30)
res = (add.s(4, 4) | group(add.si(i, i) for i in range(10)))()
out["chain_group"] = [res.get(timeout=30), res.parent.get(timeout=30)]
res = chain(add.s(4, 4), mul.s(8), mul.s(10))()
out["parents"] = [res.get(timeout=30), res.parent.get(timeout=30),
                  res.parent.parent.get(timeout=30)]
g = group(add.s(2, 2), add.s(4, 4))
res = g()
out["g"] = res.get(timeout=30)
callback = tsum.s()
header = [add.s(i, i) for i in range(100)]
out["chord_header_callback"] = chord(header)(callback).get(timeout=30)
print(json.dumps(out))
""",
        )
        assert out == {
            "chain": 16,
            "pipe": 16,
            "immutable": [16, 8, 4],
            "group": [0, 2, 4, 6, 8, 10, 12, 14, 16, 18],
            "chord": 90,
            "c1": 160,
            "c2": 352,
            "c3": 90,
            "chain_group": [[0, 2, 4, 6, 8, 10, 12, 14, 16, 18], 8],
            "parents": [640, 64, 8],
            "g": [4, 8],
            "chord_header_callback": 9900,
        }, proc.log()


def test_map_starmap_and_chunks(compat_url: str) -> None:
    with worker(project("canvas"), compat_url, *WORKER) as proc:
        out = run(
            compat_url,
            """
from proj.tasks import add, tsum

out = {}
out["map"] = ~tsum.map([list(range(10)), list(range(100))])
out["starmap"] = ~add.starmap(zip(range(10), range(10)))
later = add.starmap(zip(range(10), range(10))).apply_async(countdown=1)
out["starmap_countdown"] = later.get(timeout=30)
res = add.chunks(zip(range(100), range(100)), 10)()
out["chunks"] = res.get(timeout=30)
print(json.dumps(out))
""",
        )
        evens = [2 * i for i in range(10)]
        assert out == {
            "map": [45, 4950],
            "starmap": evens,
            "starmap_countdown": evens,
            "chunks": [[2 * i for i in range(k, k + 10)] for k in range(0, 100, 10)],
        }, proc.log()


def test_callbacks_and_errbacks(compat_url: str, tmp_path: Path) -> None:
    errors = tmp_path / "errors"
    errors.mkdir()
    with worker(project("canvas"), compat_url, *WORKER, ERRORS_DIR=str(errors)) as proc:
        out = run(
            compat_url,
            """
from conveyor import group
from proj.tasks import add, mul, log_result, log_error, raising_task, on_failed_id, error_handler

out = {}
res = add.apply_async((2, 2), link=mul.s(16))
out["linked"] = [res.get(timeout=30), res.children[0].get(timeout=30)]
res = add.apply_async((2, 2), link=add.s(8))
out["partial_callback"] = res.children[0].get(timeout=30)   # 4 + 8
s = add.s(2, 2)
s.link(mul.s(4))
s.link(log_result.s())
res = s.delay()
out["sig_links"] = [res.get(timeout=30), res.children[0].get(timeout=30)]
failed = raising_task.s().on_error(log_error.s()).delay()
failed.get(timeout=30, propagate=False)
other = raising_task.apply_async(link_error=[log_error.s(), on_failed_id.s()])
other.get(timeout=30, propagate=False)
g = group(raising_task.s(), raising_task.s())
g.link_error(log_error.s())
res = g()
res.get(timeout=30, propagate=False)
out["failed"] = [failed.id, other.id] + [r.id for r in res.results]
res = add.apply_async((2, 2), link=[add.s(16), mul.s(2)])     # the Calling guide
out["both"] = [child.get(timeout=30) for child in res.children]
handled = raising_task.apply_async(link_error=error_handler.s())
handled.get(timeout=30, propagate=False)
out["handled"] = handled.id
print(json.dumps(out))
""",
        )
        assert out["linked"] == [4, 64] and out["partial_callback"] == 12
        assert out["sig_links"] == [4, 16] and out["both"] == [20, 8]
        handled = out["handled"]
        proc.wait_for_log(
            f"Task {handled} raised exception: ValueError('something something')\n'Traceback"
        )
        failed = out["failed"]
        assert isinstance(failed, list)
        wait_until(lambda: len(list(errors.iterdir())) == 4, 30, "an error file per failure", proc)
        proc.wait_for_log(f"failed: {failed[1]}")
        proc.wait_for_log("log_result: 4")
    assert sorted(p.name for p in errors.iterdir()) == sorted(failed)
    for task_id in failed:
        text = (errors / task_id).read_text()
        assert text.startswith(f"--\n\n{task_id} something something Traceback"), text
        assert "ValueError: something something" in text


def test_a_chord_errback_on_the_body(compat_url: str) -> None:
    """Celery (its source: the guide's example predates following parents): `get()` on the
    body follows `parent` to the header and raises the member's error; the body itself fails
    with ChordError("Dependency <id> raised ValueError(...)"), and its errback gets that
    error, once, with the body's request."""
    with worker(project("canvas"), compat_url, *WORKER) as proc:
        out = run(
            compat_url,
            """
from conveyor import group
from conveyor.exceptions import ChordError
from proj.tasks import add, tsum, raising_task, on_chord_error, on_failed_id

out = {}
c = (group(add.s(i, i) for i in range(10)) |
     tsum.s().on_error(on_chord_error.s())).delay()
out["ok"] = c.get(timeout=30)
bad = (group([add.s(4, 4), raising_task.s(), add.s(8, 8)]) |
       tsum.s().on_error(on_chord_error.s()).on_error(on_failed_id.s())).delay()
try:
    bad.get(timeout=30)          # follows bad.parent, the header: the member's own error
except ValueError as exc:
    out["member_error"] = str(exc)
try:
    bad.get(timeout=30, follow_parents=False)   # the body's own outcome
except ChordError as exc:
    out["error"] = str(exc)
out["body"] = bad.id
out["member"] = bad.parent.results[1].id
print(json.dumps(out))
""",
        )
        body, member = out["body"], out["member"]
        expected = f"Dependency {member} raised ValueError('something something')"
        assert out["ok"] == 90 and out["member_error"] == "something something"
        assert out["error"] == expected
        proc.wait_for_log(f"Task {body!r} raised error: ChordError({expected!r})")
        proc.wait_for_log(f"failed: {body}")
        _once(proc, f"Task {body!r} raised error")


def _once(proc: Worker, text: str) -> None:
    assert proc.log().count(text) == 1, proc.log()
