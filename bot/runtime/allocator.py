"""The serving process's allocator (glibc's malloc; elsewhere all of this is left as it is).

- Its threads share two malloc arenas (`cap_arenas`, at start).
- Memory freed by a burst goes back to the system once the work after the acks is done, at
  most once a second (`give_back`; bot/runtime/deps.py's `Pending` calls it wherever a bot
  runs, the shell's included).
- No per-thread caches of freed blocks (`without_thread_caches`, before anything else).

Thread caches: glibc gives every thread a cache of the small blocks it freed (tcache: up to 7 of
each of 64 sizes, so up to ~230 KiB a thread), kept for the thread's life and counted as in use.
A server had ~140 threads when this was measured (waitress's INVITE_THREADS, then 64, the
follow-up pool's as many, 8 for modals; ~45 now, with 16), and each fills its cache as requests
pass through it: after 10,000 mixed requests they held ~16 MiB (RSS 91-93 MiB with the caches,
73-74 without; bench/memory_growth.py). Under the interpreter lock threads seldom allocate at
once, so the cache saves little. It can only be turned off before the process starts
(GLIBC_TUNABLES is read when the C library loads), so `invite-bot serve` starts itself once more
with it set, before it imports or parses anything else (bot/cli/main.py): the same process
(execve keeps the pid), ~34 ms later - the interpreter's own start, ~30 ms of it (44 ms when the
exec came after the command line was parsed). The Dockerfile sets it, so the image starts once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable

TUNABLES = "glibc.malloc.tcache_count=0"


def without_thread_caches() -> None:
    """Exec this same command again with glibc's thread caches off; returns (doing nothing)
    where the C library is not glibc, when GLIBC_TUNABLES is set already (by the operator,
    the image or the first exec: an operator's choice is kept) or when the command line is
    not known."""
    if "GLIBC_TUNABLES" in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return
    except (ValueError, OSError):  # musl and others have no such name
        return
    command = getattr(sys, "orig_argv", None)
    if not command or not sys.executable:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(  # noqa: S606 - the same interpreter and command line, no shell
            sys.executable,
            [sys.executable, *command[1:]],
            {**os.environ, "GLIBC_TUNABLES": TUNABLES},
        )
    except OSError:  # cannot exec (a sandbox forbids it): serve with the caches on
        return


M_ARENA_MAX = -8  # glibc's mallopt parameter, as in <malloc.h>


def cap_arenas(arenas: int = 2) -> None:
    """At most `arenas` malloc arenas, as MALLOC_ARENA_MAX=2 would. glibc gives busy threads
    arenas of their own (up to 8 per core) and each keeps the memory its threads freed: with
    the server's 140 threads of then, RSS after 10,000 requests was 110 MiB with 16 arenas, 86
    with 2.
    Under the interpreter lock threads seldom allocate at the same moment, so sharing costs
    little. Left alone when MALLOC_ARENA_MAX is set, and where there is no glibc."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    import ctypes  # here: only the serving process tunes its allocator

    with contextlib.suppress(OSError, AttributeError):  # a C library without mallopt
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas)


@functools.cache  # looked up once, on first use: not before `serve` starts itself again
def trimmer() -> Callable[[int], object] | None:
    """glibc's `malloc_trim`, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl and others: no malloc_trim
        return None


class GiveBack:
    """Malloc's whole free pages given back to the system (`malloc_trim(0)`), at most once
    every `every` seconds.

    A burst's acks and the work after them free what they used, but glibc keeps the freed
    pages inside its heaps for the next allocation. Called by the work thread that finished
    the last piece of work after the acks (`Pending`, bot/runtime/deps.py), never on an ack's.
    A trim lets go of the interpreter lock but holds malloc's locks while it walks the heaps:
    0.1-1 ms here, during which a thread that allocates waits. So it is rate-limited, and a
    trim skipped comes with the next idle moment after it. Measured on hot_paths' mix, once
    per idle moment: a trim sent by hand after 10,000 requests gave back 0.6-0.9 MiB without
    it and at most 0.1 MiB with it; RSS itself moved within its noise between runs
    (docs/benchmarks.md)."""

    def __init__(
        self,
        every: float = 1.0,
        trim: Callable[[int], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self._trim = trim
        self.clock = clock
        self._at: float | None = None  # when the last trim began

    def __call__(self) -> bool:
        """Trim now unless one began less than `every` seconds ago; whether it did."""
        at = self.clock()
        if self._at is not None and at - self._at < self.every:
            return False
        trim = self._trim or trimmer()
        if trim is None:
            return False
        self._at = at  # two threads at once may both trim: harmless
        trim(0)
        return True


give_back = GiveBack()
