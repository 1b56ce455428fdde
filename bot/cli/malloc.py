"""The serving process's allocator: glibc without per-thread caches of freed blocks.

glibc gives every thread a cache of the small blocks it freed (tcache: up to 7 of each of 64
sizes, so up to ~230 KiB a thread), kept for the thread's life and counted as in use. A server
had ~140 threads when this was measured (waitress's INVITE_THREADS, then 64, the follow-up
pool's as many, 8 for modals; ~45 now, with 16), and
each fills its cache as requests pass through it: after 10,000 mixed requests they held ~16 MiB
(RSS 91-93 MiB with the caches, 73-74 without; bench/memory_growth.py). Under the interpreter
lock threads seldom allocate at once, so the cache saves little. It can only be turned off
before the process starts (GLIBC_TUNABLES is read when the C library loads), so `invite-bot
serve` starts itself once more with it set, before it imports or parses anything else
(bot/cli/main.py): the same process (execve keeps the pid), ~34 ms later - the interpreter's
own start, ~30 ms of it (44 ms when the exec came after the command line was parsed). The
Dockerfile sets it, so the image starts once.
"""

from __future__ import annotations

import os
import sys

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
