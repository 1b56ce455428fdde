"""Small state read on every delivery (who looks at the App Home, the command's name) is read
from the store at most every RECENT_SECONDS by one process - the command's name, which the
sweep reads again, every COMMAND_SECONDS; its own writes show at once."""

from __future__ import annotations

import time

import pytest

from bot.runtime.command import COMMAND_SECONDS, installed_command, keep_command
from bot.store import small_state
from tests.test_store import open_engine


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_recent_small_state_is_read_again_only_after_a_while(
    engine, tmp_path, request, monkeypatch
):
    """Within RECENT_SECONDS (the command's name: COMMAND_SECONDS) a read is answered from
    memory; after it, from the store, which then shows another process's write; this
    process's own write shows at once."""
    clock = [1000.0]
    monkeypatch.setattr(small_state, "monotonic", lambda: clock[0])  # this module's clock only
    store, other = open_engine(engine, tmp_path, request), open_engine(engine, tmp_path, request)
    reads = []
    real = store.get_meta
    monkeypatch.setattr(store, "get_meta", lambda *a: reads.append(a) or real(*a))
    try:
        assert installed_command(store) == "/invite" and installed_command(store) == "/invite"
        assert store.recent_meta("home_users", []) == [] and len(reads) == 2
        keep_command(other, "/awork-invite")  # another replica
        other.add_to_meta_set("home_users", "U1")
        clock[0] += small_state.RECENT_SECONDS + 0.5
        assert store.recent_meta("home_users", []) == ["U1"] and len(reads) == 3
        clock[0] += COMMAND_SECONDS - small_state.RECENT_SECONDS - 1
        assert installed_command(store) == "/invite" and len(reads) == 3
        clock[0] += 1
        assert installed_command(store) == "/awork-invite" and len(reads) == 4
        keep_command(store, "/invite")  # this process: shows at once
        assert installed_command(store) == "/invite"
    finally:
        store.close()
        other.close()


def test_the_sweep_reads_the_commands_name_again(tmp_path, slack, awork):
    """The sweep reads the command's name again at once (and every INVITE_SWEEP_SECONDS): a
    name another replica kept shows here without waiting out COMMAND_SECONDS."""
    from tests.conftest import build_bot, make_settings

    built = build_bot(make_settings(tmp_path, slack.url, INVITE_SWEEP_SECONDS="30"), awork.handler)
    try:
        assert installed_command(built.store) == "/invite"  # read, and kept in memory
        built.store.set_meta("command_name", "/awork-invite")  # as another replica keeps it
        assert installed_command(built.store) == "/invite"
        built.start_background()
        deadline = time.monotonic() + 5
        while installed_command(built.store) == "/invite" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert installed_command(built.store) == "/awork-invite"
    finally:
        built.shutdown(timeout=5)


def test_a_read_from_before_this_processs_own_write_is_not_kept(tmp_path, monkeypatch):
    """A read that began before this process changed the key (and forgot it) answers its
    caller but is not kept: the next read goes to the store and shows the change."""
    import threading

    from bot.store import SqliteStore

    store = SqliteStore(str(tmp_path / "s.sqlite"))
    try:
        real, reading, written = store.get_meta, threading.Event(), threading.Event()

        def slow(key, default=None):
            value = real(key, default)
            if threading.current_thread().name == "reader":
                reading.set()
                written.wait(5)
            return value

        monkeypatch.setattr(store, "get_meta", slow)
        read = threading.Thread(target=store.recent_meta, args=("home_users", []), name="reader")
        read.start()
        reading.wait(5)
        store.add_to_meta_set("home_users", "U1")
        store.forget_recent("home_users")
        written.set()
        read.join(5)
        assert store.recent_meta("home_users", []) == ["U1"]
    finally:
        store.close()
