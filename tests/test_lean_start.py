"""`invite-bot serve` imports what serving needs and nothing more: the shell, the sandbox, the
doctor's own checks, the manifest, email_validator, httpx's command line (and with it rich) and
httpx's connection pool come when a path first needs them. And its threads share two malloc
arenas rather than keeping up to 16 (the memory they gain over 10,000 requests), and the pages
malloc holds free go back to the system once the work after the acks is done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import httpx
import pytest

from bot.awork.client import FirstUse

# What `invite-bot serve --http` imports before it answers (bot/cli/main.py, then serve.py's
# preflight and the server), then what is loaded once an address is checked.
SERVE_IMPORTS = """
import json, sys
import bot.cli.main, bot.cli.serve, bot.runtime.web
from bot.cli.doctor.policy import policy_problem
from bot.cli.doctor.slack import quiet_slack_sdk, unreachable
from bot.cli.doctor.store import store_writable
serving = sorted(name for name, module in sys.modules.items() if module is not None)
from bot.domain.details import InviteDetails
address = InviteDetails(email=" Ada@Example.COM ").email
print(json.dumps({"serving": serving, "address": address, "later": sorted(sys.modules)}))
"""
NOT_FOR_SERVING = (
    "bot.cli.shell",
    "bot.awork.sandbox",
    "bot.cli.doctor.awork",
    "bot.cli.doctor.links",
    "bot.cli.manifest",
    "bot.cli.policy",
    "bot.cli.store_commands",
    "email_validator",
    "httpx._main",
    "rich",
    "click",
    "pygments",
    "httpcore",
    "tomllib",
)


def test_serving_imports_neither_the_cli_tools_nor_what_a_request_loads_later():
    """None of the command line's other tools, nor email_validator or httpx's pool, is imported
    to serve; email_validator arrives with the first address and normalises it as before."""
    result = subprocess.run(
        [sys.executable, "-c", SERVE_IMPORTS], capture_output=True, text=True, check=True
    )
    seen = json.loads(result.stdout)
    loaded = [
        name
        for name in seen["serving"]
        if any(name == lazy or name.startswith(f"{lazy}.") for lazy in NOT_FOR_SERVING)
    ]
    assert loaded == []
    assert "bot.runtime.app" in seen["serving"]  # the check saw the whole serving path
    assert seen["address"] == "Ada@example.com"
    assert "email_validator" in seen["later"]


def test_the_awork_transport_is_made_once_at_the_first_request_and_closed_with_it():
    """Nothing is made until a request; concurrent first requests make one transport; close
    closes it (and closes nothing when no request was made)."""
    made: list[httpx.MockTransport] = []
    closed: list[bool] = []

    class Closing(httpx.MockTransport):
        def close(self) -> None:
            closed.append(True)

    def make() -> httpx.BaseTransport:
        transport = Closing(lambda request: httpx.Response(200, json={"path": request.url.path}))
        made.append(transport)
        return transport

    unused = FirstUse(make)
    unused.close()
    assert made == [] and closed == []

    lazy = FirstUse(make)
    start = threading.Barrier(8)
    answers: list[int] = []

    def ask() -> None:
        start.wait(5)
        answers.append(lazy.handle_request(httpx.Request("GET", "http://awork/x")).status_code)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert answers == [200] * 8 and len(made) == 1
    lazy.close()
    assert closed == [True]


ARENAS = """
import ctypes, threading
from bot.runtime.allocator import cap_arenas
cap_arenas()
go = threading.Barrier(16)
def work():
    go.wait(5)
    kept = [bytearray(2000) for _ in range(200)]
threads = [threading.Thread(target=work) for _ in range(16)]
for thread in threads: thread.start()
for thread in threads: thread.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" paragraph per arena, on stderr
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_serving_threads_share_two_malloc_arenas():
    """16 threads allocating at once use at most 2 malloc arenas once serving has capped them
    (glibc would give them up to 8 per core, each keeping what its threads freed)."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    result = subprocess.run(
        [sys.executable, "-c", ARENAS], capture_output=True, text=True, check=True, env=env
    )
    arenas = [line for line in result.stderr.splitlines() if line.startswith("Arena ")]
    assert 1 <= len(arenas) <= 2


GIVE_BACK = """
import json
from bot.runtime.allocator import give_back

def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:")) / 1024

blocks = [bytearray(4000) for _ in range(20000)]  # ~80 MiB from malloc, not pymalloc
kept = blocks[-1]  # the heap's top stays in use: only pages inside it can go back
del blocks
freed = rss()
give_back()
print(json.dumps([freed, rss()]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_memory_freed_inside_mallocs_heap_is_given_back():
    """give_back() returns the whole free pages inside malloc's heap to the system: RSS falls
    by most of the 80 MiB freed below a block still in use (without it, none of it)."""
    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
        pytest.skip("not glibc")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    result = subprocess.run(
        [sys.executable, "-c", GIVE_BACK], capture_output=True, text=True, check=True, env=env
    )
    freed, after = json.loads(result.stdout)
    assert freed - after > 50, (freed, after)


def test_the_work_thread_that_ends_the_last_work_gives_memory_back():
    """When the last of two pieces of work after the acks ends, its work thread gives freed
    memory back, once; follow-up work refused at shutdown never does it on the ack's thread."""
    from concurrent.futures import ThreadPoolExecutor

    from bot.runtime.deps import Deps, Pending

    trimmed: list[str] = []
    done = threading.Event()

    def give_back() -> None:
        trimmed.append(threading.current_thread().name)
        done.set()

    pending = Pending(on_idle=give_back)
    gate = threading.Event()
    with ThreadPoolExecutor(2, thread_name_prefix="work") as pool:
        for _ in range(2):
            Deps._submit(pool, gate.wait, (5,), pending=pending)
        assert trimmed == []
        gate.set()
        assert done.wait(5)
    assert len(trimmed) == 1 and trimmed[0].startswith("work")
    Deps._submit(pool, gate.wait, (5,), pending=pending)  # the pool is shut down now
    assert len(trimmed) == 1 and pending.wait_idle(0)


def test_memory_is_given_back_at_most_once_a_second():
    """A trim is skipped when one began less than a second ago, and made again after it."""
    from bot.runtime.allocator import GiveBack

    now = [100.0]
    trims: list[int] = []
    give_back = GiveBack(trim=trims.append, clock=lambda: now[0])
    assert give_back() and trims == [0]
    now[0] += 0.5
    assert not give_back() and trims == [0]
    now[0] += 0.6
    assert give_back() and trims == [0, 0]


AGAIN = """
import os
from bot.runtime.allocator import without_thread_caches
print(os.getpid(), os.environ.get("GLIBC_TUNABLES"), flush=True)
without_thread_caches()
print("serving", flush=True)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's thread caches")
@pytest.mark.parametrize("operator", [None, "glibc.malloc.tcache_count=3"])
def test_serving_starts_once_more_without_glibcs_thread_caches(operator):
    """Serving execs itself once with GLIBC_TUNABLES turning the per-thread caches off (same
    pid, same command line); an operator's GLIBC_TUNABLES is kept and nothing is exec'd."""
    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
        pytest.skip("not glibc")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    if operator:
        env["GLIBC_TUNABLES"] = operator
    result = subprocess.run(
        [sys.executable, "-c", AGAIN], capture_output=True, text=True, check=True, env=env
    )
    lines = result.stdout.splitlines()
    if operator:
        assert lines[1:] == ["serving"] and lines[0].endswith(operator)
        return
    first, second = (line.split(" ", 1) for line in lines[:2])
    assert lines[2:] == ["serving"]
    assert first == [second[0], "None"] and second[1] == "glibc.malloc.tcache_count=0"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's thread caches")
def test_serve_starts_once_more_before_it_imports_or_parses_anything(tmp_path):
    """`invite-bot serve` execs itself before its command line is parsed: what the first
    process did is start-up time spent twice (the parser, logging's set-up, the settings)."""
    if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
        pytest.skip("not glibc")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["INVITE_DB_PATH"] = str(tmp_path / "store.sqlite")
    command = [sys.executable, "-X", "importtime", "-m", "bot", "serve", "--http", "--port", "1"]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    first: list[str] = []
    try:
        for line in process.stderr:
            if line.startswith("import time: self"):
                if first:
                    break  # the second process's header: the exec happened
                first.append(line)
            elif first:
                first.append(line.rsplit("|", 1)[-1].strip())
        else:
            pytest.fail("serve did not start itself once more")
    finally:
        process.kill()
        process.wait()
    assert "bot.runtime.allocator" in first
    assert not {"argparse", "bot.cli.parser", "pydantic", "bot.runtime.config"} & set(first)


COLLECTOR = """
import gc, json, sys
import bot.cli.main as cli

seen = {}
cli.run = lambda argv: seen.setdefault("during", gc.isenabled()) and 0
sys.argv = ["invite-bot", *sys.argv[1:]]
cli.main()
import weakref
from bot.runtime.app import started

class Cycle:
    pass

cycle = Cycle()
cycle.me = cycle  # garbage start-up left: only the collector can free it
left = weakref.ref(cycle)
del cycle
started()
print(json.dumps({**seen, "after": gc.isenabled(), "frozen": gc.get_freeze_count(),
                  "garbage_kept": left() is not None}))
"""


@pytest.mark.parametrize(("command", "during"), [("serve", False), ("audit", True)])
def test_serve_starts_with_the_collector_off_until_it_serves(command, during):
    """`invite-bot serve` starts with the garbage collector off (its ~35 ms of collections
    over what start-up builds); `started()` frees start-up's garbage, freezes the rest (not
    the garbage with it, for good) and turns it on; other commands keep it on."""
    env = {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}  # no exec here
    result = subprocess.run(
        [sys.executable, "-c", COLLECTOR, command],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    seen = json.loads(result.stdout)
    assert seen["during"] is during
    assert seen["after"] is True and seen["frozen"] > 10_000
    assert seen["garbage_kept"] is False


class Served(Exception):
    """Raised by a fake connection once it has seen what serving begins with."""


def test_both_servers_serve_with_the_collector_on(monkeypatch):
    """The HTTP server and Socket Mode each turn the collector back on (`started`) before
    their background work starts and before they serve; without it the collector would stay
    off for the process's life."""
    import gc
    import signal
    from types import SimpleNamespace

    import slack_bolt.adapter.socket_mode as socket_mode

    import bot.runtime.app as app
    from bot.cli.serve import run_socket_mode
    from bot.runtime import web

    seen: list[tuple[str, bool]] = []

    class FakeBot:
        app = None

        def start_background(self) -> None:
            seen.append(("background", gc.isenabled()))

        def warm_up(self) -> None: ...

        def shutdown(self, timeout: float = 0) -> None: ...

    class FakeServer:
        def run(self) -> None:
            seen.append(("http", gc.isenabled()))

        def close(self) -> None: ...

    class FakeHandler:
        def __init__(self, *args) -> None: ...

        def connect(self) -> None:
            seen.append(("socket", gc.isenabled()))
            raise Served

    for module in (web, app):
        monkeypatch.setattr(module, "build", lambda settings, **given: FakeBot())
    monkeypatch.setattr(web, "allow_many_sockets", lambda wanted: None)
    monkeypatch.setattr(web, "wsgi_app", lambda bot: None)
    monkeypatch.setattr(web, "create_server", lambda *args, **kwargs: FakeServer())
    monkeypatch.setattr(socket_mode, "SocketModeHandler", FakeHandler)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # not this test process's heap
    monkeypatch.setattr(sys, "setswitchinterval", lambda seconds: None)
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    settings = SimpleNamespace(
        threads=2, http_body_timeout=5.0, slack_app_token=SimpleNamespace(get_secret_value=str)
    )
    try:
        gc.disable()
        web.Server(settings, "127.0.0.1", 0).run()
        gc.disable()
        with pytest.raises(Served):
            run_socket_mode(settings)
    finally:
        gc.enable()
    assert seen == [("background", True), ("http", True), ("background", True), ("socket", True)]


def test_a_stop_while_the_pools_warm_up_is_quick_and_quiet(bot):
    """A stop (SIGTERM) while warm-up is starting the pools' threads: the stop does not wait
    out warm-up's 5 s gate, and warm-up ends without an error from the pool it shut down."""
    import threading
    import time

    real = bot.executor.submit
    warming: list[object] = []
    stopped: list[float] = []

    def submit(fn, *args, **kwargs):
        if isinstance(getattr(fn, "__self__", None), threading.Barrier):
            warming.append(fn)
            if len(warming) == 2:  # one thread at the gate, the others not started: stop now
                started = time.monotonic()
                bot.shutdown(timeout=10)
                stopped.append(time.monotonic() - started)
        return real(fn, *args, **kwargs)

    bot.executor.submit = submit
    bot.warm_up()  # raises nothing
    assert stopped and stopped[0] < 2, stopped
