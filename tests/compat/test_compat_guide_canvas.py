"""Celery's "Canvas: Designing Work-flows" user guide (docs/userguide/canvas.rst), with its
tasks in projects/guide_canvas/proj (add, mul in tasks.py; tsum and the others in canvas.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import Running, project, worker


@pytest.fixture(scope="module")
def guide(module_url: str) -> Iterator[Running]:
    where = project("guide_canvas")
    with worker(where, module_url, "-A", "proj", "worker", "-l", "INFO", "-c", "2") as w:
        yield Running(where, module_url, w)


def test_signature_parts_and_printing(guide: Running) -> None:
    out = guide.lines(
        """
        from conveyor import signature
        from proj.tasks import add
        print(signature('proj.tasks.add', args=(2, 2), countdown=10))
        print(add.s(2, 2, debug=True))
        s = add.signature((2, 2), {'debug': True}, countdown=10)
        print(s.args, s.kwargs, s.options)
        """
    )
    assert out == [
        "proj.tasks.add(2, 2)",
        "proj.tasks.add(2, 2, debug=True)",
        "(2, 2) {'debug': True} {'countdown': 10}",
    ]


def test_calling_a_signature_runs_it_here(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.tasks import add
        print(add(2, 2))
        print(add.s(2, 2)())
        """
    )
    assert out == ["4", "4"]


def test_signature_options_and_partials(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.canvas import subtract
        from proj.tasks import add
        print(add.signature((2, 2), countdown=1).delay().get(timeout=10))
        print(add.signature((2, 2)).set(countdown=1).delay().get(timeout=10))
        partial = add.s(2)
        print(partial.delay(4).get(timeout=10))
        print(partial.apply_async((4,)).get(timeout=10))
        partial = subtract.s(10)
        print(partial.delay(30).get(timeout=10))
        s = add.s(2).clone(args=(4,), kwargs={'debug': True})
        print(s.args, s.kwargs)
        """
    )
    assert out == ["4", "4", "6", "6", "20", "(4, 2) {'debug': True}"]


def test_invert_map_and_starmap(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.canvas import tsum
        from proj.tasks import add
        print(~add.s(2, 2))
        print(~tsum.map([list(range(10)), list(range(100))]))
        print(~add.starmap(zip(range(10), range(10))))
        """
    )
    assert out == ["4", "[45, 4950]", "[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]"]


def test_chains_with_partial_arguments(guide: Running) -> None:
    out = guide.lines(
        """
        from conveyor import chain
        from proj.tasks import add, mul
        # 2 + 2 + 4 + 8
        res = chain(add.s(2, 2), add.s(4), add.s(8))()
        print(res.get(timeout=10))
        print((add.s(2, 2) | add.s(4) | add.s(8))().get(timeout=10))
        c1 = (add.s(4) | mul.s(8))
        # (16 + 4) * 8
        print(c1(16).get(timeout=10))
        # ((4 + 16) * 2 + 4) * 8
        c2 = (add.s(4, 16) | mul.s(2) | (add.s(4) | mul.s(8)))
        print(c2().get(timeout=10))
        """
    )
    assert out == ["16", "16", "160", "352"]


def test_a_chain_result_has_its_parents(guide: Running) -> None:
    out = guide.lines(
        """
        from conveyor import chain
        from proj.tasks import add, mul
        res = (add.si(2, 2) | add.si(4, 4) | add.si(8, 8))()
        print(res.get(timeout=10), res.parent.get(timeout=10), res.parent.parent.get(timeout=10))
        res = chain(add.s(4, 4), mul.s(8), mul.s(10))()
        print(res.get(timeout=10), res.parent.get(timeout=10), res.parent.parent.get(timeout=10))
        """
    )
    assert out == ["16 8 4", "640 64 8"]


def test_a_chain_into_a_group_of_immutable_signatures(guide: Running) -> None:
    out = guide.lines(
        """
        from conveyor import group
        from proj.tasks import add
        res = (add.s(4, 4) | group(add.si(i, i) for i in range(10)))()
        print(res.get(timeout=10))
        print(res.parent.get(timeout=10))
        """
    )
    assert out == ["[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]", "8"]


def test_link_children_and_linked_signatures(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.canvas import log_result
        from proj.tasks import add, mul
        res = add.apply_async((2, 2), link=mul.s(16))
        print(res.get(timeout=10))
        print(res.children[0].get(timeout=10))
        s = add.s(2, 3)
        s.link(mul.s(4))
        s.link(log_result.s())
        print(s.delay().get(timeout=10))
        """
    )
    assert out == ["4", "64", "5"]
    guide.worker.wait_for_log("log_result: 5", timeout=10)


def test_on_error_calls_the_errback(guide: Running) -> None:
    out = guide.lines(
        """
        from proj.canvas import fail, log_error
        res = fail.s().on_error(log_error.s()).delay()
        try:
            res.get(timeout=10)
        except ValueError as exc:
            print(exc)
        print(res.id)
        """
    )
    assert out[0] == "fail fails"
    guide.worker.wait_for_log(f"{out[1]} fail fails", timeout=10)


def test_group_results(guide: Running) -> None:
    out = guide.lines(
        """
        import time
        from conveyor import group
        from proj.tasks import add
        g = group(add.s(2, 2), add.s(4, 4))
        print(g().get(timeout=10))
        job = group([
            add.s(2, 2),
            add.s(4, 4),
            add.s(8, 8),
            add.s(16, 16),
            add.s(32, 32),
        ])
        result = job.apply_async()
        print(result.get(timeout=10))
        print(result.ready(), result.successful(), result.completed_count())
        """
    )
    assert out == [
        "[4, 8]",
        "[4, 8, 16, 32, 64]",
        "True True 5",
    ]


def test_group_link_error_is_called_for_each_failure(guide: Running) -> None:
    out = guide.lines(
        """
        from conveyor import group
        from proj.canvas import fail, log_error
        g = group(fail.s(), fail.s())
        g.link_error(log_error.s())
        res = g()
        for r in res.results:
            print(r.id)
        res.get(timeout=10, propagate=False)
        """
    )
    for task_id in out:
        guide.worker.wait_for_log(f"{task_id} fail fails", timeout=10)


def test_chords(guide: Running) -> None:
    out = guide.lines(
        """
        from conveyor import chord, group
        from proj.canvas import tsum
        from proj.tasks import add
        res = chord((add.s(i, i) for i in range(10)), tsum.s())()
        print(res.get(timeout=10))
        callback = tsum.s()
        header = [add.s(i, i) for i in range(100)]
        result = chord(header)(callback)
        print(result.get(timeout=60))
        c3 = (group(add.s(i, i) for i in range(10)) | tsum.s())
        print(c3().get(timeout=10))
        """,
        timeout=180,
    )
    assert out == ["90", "9900", "90"]


def test_a_failing_chord_member_fails_the_chord_with_chorderror(guide: Running) -> None:
    """The guide's snippet calls a chord without a body, which Celery itself cannot send (its
    apply_async clones the missing body); the body here is the guide's tsum. Celery's get()
    checks the header while it waits, so it may raise the member's own ValueError first (its
    docs show ChordError, raised once the body is failed): either carries the member's error.
    The body itself ends FAILURE with ChordError."""
    out = guide.lines(
        """
        import time
        from conveyor import chord
        from conveyor.exceptions import ChordError
        from proj.canvas import raising_task, tsum
        from proj.tasks import add
        c = chord([add.s(4, 4), raising_task.s(), add.s(8, 8)], tsum.s())
        result = c()
        try:
            result.get(timeout=10)
        except (ChordError, ValueError) as exc:
            print('something something' in str(exc))
        deadline = time.monotonic() + 10
        while not result.ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        print(result.state)
        print(type(result.get(propagate=False, follow_parents=False)).__name__)
        """
    )
    assert out == ["True", "FAILURE", "ChordError"]


def test_chunks(guide: Running) -> None:
    out = guide.run(
        """
        from proj.tasks import add
        res = add.chunks(zip(range(100), range(100)), 10)()
        print(res.get(timeout=30))
        """
    )
    expected = [[2 * (10 * c + i) for i in range(10)] for c in range(10)]
    assert out.strip() == str(expected)


def test_result_sets_and_saved_group_results(guide: Running) -> None:
    out = guide.lines(
        """
        from conveyor import group
        from conveyor.result import GroupResult, ResultSet
        from proj.tasks import add
        rs = ResultSet([add.delay(1, 1), add.delay(2, 2)])
        print(rs.get(timeout=10))
        res = group(add.s(3, 3), add.s(4, 4))()
        res.save()
        restored = GroupResult.restore(res.id)
        print(restored.get(timeout=10))
        """
    )
    assert out == ["[2, 4]", "[6, 8]"]
