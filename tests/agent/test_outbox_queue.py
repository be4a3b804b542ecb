"""The outbox queue: order, confirmation by the cloud, re-sending, the cap."""

from __future__ import annotations

from pathlib import Path

from agent.outbox_queue import FIRST_RESEND_S, MAX_RESEND_S, QueuedEvent
from agent.store import Store


def _ev(event_id: str, security: bool = True) -> QueuedEvent:
    return QueuedEvent(event_id, "access_granted" if security else "door_opened", security, "{}")


def _ids(rows: list) -> list[str]:  # type: ignore[type-arg]
    return [r.event_id for r in rows]


def test_events_go_out_in_order_and_leave_only_when_the_cloud_confirms(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    q = store.outbox
    q.enqueue([_ev(f"e{i}") for i in range(5)])
    head = q.next_unsent(3)
    assert _ids(head) == ["e0", "e1", "e2"]
    q.sent(head, now=100.0)
    assert _ids(q.next_unsent(10)) == ["e3", "e4"]
    assert q.depth == 5  # the broker's PUBACK is not enough
    assert q.confirmed(["e0", "e1", "e2", "unknown"]) == 3
    assert q.depth == 2
    q.enqueue([_ev("e5")])  # confirmed rows are deleted with the next write
    store.close()
    again = Store(tmp_path / "agent.db")
    assert _ids(again.outbox.next_unsent(10)) == ["e3", "e4", "e5"]


def test_unconfirmed_events_are_sent_again_with_growing_backoff(tmp_path: Path) -> None:
    q = Store(tmp_path / "agent.db").outbox
    q.enqueue([_ev("a"), _ev("b")])
    q.sent(q.next_unsent(10), now=0.0)
    assert q.due_again(FIRST_RESEND_S - 0.1, 10) == []
    assert _ids(q.due_again(FIRST_RESEND_S, 10)) == ["a", "b"]
    q.confirmed(["b"])
    q.sent(q.due_again(FIRST_RESEND_S, 10), now=FIRST_RESEND_S)
    assert q.next_due() == FIRST_RESEND_S + 2 * FIRST_RESEND_S
    now = FIRST_RESEND_S
    for _ in range(20):
        due = q.next_due()
        assert due is not None
        now = due
        q.sent(q.due_again(now, 10), now=now)
    next_due = q.next_due()
    assert next_due is not None
    assert next_due - now == MAX_RESEND_S


def test_after_a_crash_every_unconfirmed_event_is_sent_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "agent.db")
    store.outbox.enqueue([_ev(f"e{i}") for i in range(3)])
    store.outbox.sent(store.outbox.next_unsent(3), now=0.0)
    store.outbox.confirmed(["e0"])
    # No write and no close before the "crash": a new process starts from what is on disk.
    crashed = Store(tmp_path / "agent.db")
    assert _ids(crashed.outbox.next_unsent(10)) == ["e0", "e1", "e2"]


def test_events_queued_after_the_table_emptied_are_still_sent(tmp_path: Path) -> None:
    q = Store(tmp_path / "agent.db").outbox
    q.enqueue([_ev(f"a{i}") for i in range(5)])
    q.sent(q.next_unsent(5), now=0.0)
    q.confirmed([f"a{i}" for i in range(5)])
    q.enqueue([_ev("b0")])  # deletes a0..a4 in the same transaction
    assert _ids(q.next_unsent(10)) == ["b0"]
    q.sent(q.next_unsent(10), now=1.0)
    q.confirmed(["b0"])
    q.flush()
    q.enqueue([_ev("c0"), _ev("c1")])
    assert _ids(q.next_unsent(10)) == ["c0", "c1"]
    assert q.depth == 2


def test_the_cap_drops_routine_events_first(tmp_path: Path) -> None:
    q = Store(tmp_path / "agent.db", outbox_cap=1000).outbox
    q.enqueue([_ev(f"s{i}", security=True) for i in range(400)])
    q.enqueue([_ev(f"r{i}", security=False) for i in range(600)])
    assert q.enqueue([]) is None
    dropped = q.enqueue([_ev("new-security")])
    assert dropped is not None
    assert dropped.security == 0
    assert dropped.routine == 11  # one over the cap, plus 1% slack
    left = _ids(q.rows(2000))
    assert left[:400] == [f"s{i}" for i in range(400)]  # every security event kept
    assert left[400] == "r11"  # the oldest routine ones went
    assert left[-1] == "new-security"
    assert q.depth == len(left) == 990
    flood = q.enqueue([_ev(f"x{i}") for i in range(1200)])  # nothing routine left to drop
    assert flood is not None
    assert flood.routine == 589
    assert flood.security > 0
    assert q.depth <= 1000
