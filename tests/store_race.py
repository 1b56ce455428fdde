"""What each process of the cross-process compare-and-set test runs (tests/test_audit_and_processes.py).

A module of its own that imports only the store: a spawned process imports the module its
target lives in, and the test module would bring pytest's fixtures, Bolt and the fakes along -
twice the start-up of each of the four processes."""

from __future__ import annotations

from bot.domain.records import Status
from bot.store import SqliteStore


def race(path: str, request_ids: list[str], worker: int, start, results) -> None:
    """Open the store, wait for the others, then try every request's PENDING -> INVITING;
    put the ids this process won (or what went wrong) on `results`."""
    try:
        store = SqliteStore(path)
        start.wait(60)  # every process has its store open: they race from here together
        won = []
        for request_id in request_ids:
            ok, _ = store.transition(
                request_id, {Status.PENDING}, Status.INVITING, decided_by=f"P{worker}"
            )
            if ok:
                won.append(request_id)
        store.close()
        results.put(won)
    except Exception as exc:  # the test reports it, instead of waiting for a result
        results.put(repr(exc))
