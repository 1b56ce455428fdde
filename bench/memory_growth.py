"""What grows in the serving process over 10,000 mixed requests, step by step.

Starts the real `invite-bot serve --http` on sqlitedict against loopback fakes of Slack and
awork (as bench/hot_paths.py does), warms every path up with one burst each, then sends the
mixed requests of hot_paths.py's memory figure in steps (`--step`, default 2,000) and after
each step prints the process's RSS, its threads, and what a SIGUSR1 makes it write (the
launcher below runs the bot's own `main` with that handler installed, nothing of the bot is
changed): glibc's heap as `mallinfo2` sees it (in use / free inside the heap / mmapped),
pymalloc's arenas, the objects the collector tracks, and with `--tracemalloc` the memory
Python has allocated and still holds. RSS rising while what Python and malloc hold stays put
is fragmentation or freed memory not given back; what Python holds rising per request without
bound is a leak; what rises to a plateau is a cache filling up.

With `--tracemalloc` (slower, and tracemalloc's own tables add to RSS: read RSS from a run
without it) a snapshot is taken after warming up and after each step, and the lines (or, with
`--group traceback`, the call stacks) that grew most since the warm-up are printed.
Run: .venv/bin/python bench/memory_growth.py [--total 10000] [--step 2000] [--tracemalloc]
     [--frames 8] [--top 25] [--group lineno|traceback|filename] [--env NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ack_latency import SECRET, TOKEN, rss_mb
from bench.hot_paths import APPROVER, PATHS, Server, mixed_until, one_burst
from tests import serving
from tests.fakes.awork import FakeAwork
from tests.fakes.slack import FakeSlack

# Run in the server process: a SIGUSR1 writes its figures (and with tracemalloc on, a snapshot)
# next to the path in INVITE_BENCH_REPORT, then `invite-bot serve` runs as it always does.
LAUNCHER = r"""
import ctypes, gc, json, os, signal, sys, threading, tracemalloc
frames = int(os.environ.get("INVITE_BENCH_TRACEMALLOC") or 0)
if frames:
    tracemalloc.start(frames)
    import bot.store.budget as budget  # traced, a burst's acks overrun the store's time budget
    budget.ACK_SECONDS, budget.CALL_SECONDS = 60.0, 30.0
report = os.environ["INVITE_BENCH_REPORT"]

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

def pymalloc():
    r, w = os.pipe()
    saved = os.dup(2)
    out = b""
    try:
        os.dup2(w, 2)
        os.close(w)
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    found = {}
    for line in out.decode(errors="replace").splitlines():
        key, _, value = line.rpartition("=")
        key = key.strip().lstrip("# ").strip()
        if key in ("arenas allocated current", "arenas highwater mark", "bytes in allocated blocks",
                   "bytes in available blocks", "Total"):
            found[key] = int(value.strip().replace(",", "") or 0)
    return found

def dump(*_):
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Mallinfo2
    info = libc.mallinfo2()
    figures = {
        "malloc_in_use_mb": info.uordblks / 2**20,
        "malloc_free_in_heap_mb": info.fordblks / 2**20,
        "malloc_heap_mb": info.arena / 2**20,
        "malloc_mmapped_mb": info.hblkhd / 2**20,
        "pymalloc": pymalloc(),
        "gc_objects": len(gc.get_objects()),
        "threads": threading.active_count(),
        "modules": sorted(name for name, m in list(sys.modules.items()) if m is not None),
    }
    if tracemalloc.is_tracing():
        figures["traced_mb"] = tracemalloc.get_traced_memory()[0] / 2**20
        tracemalloc.take_snapshot().dump(report + ".snapshot")
    with open(report + ".tmp", "w") as f:
        json.dump(figures, f)
    os.replace(report + ".tmp", report)

signal.signal(signal.SIGUSR1, dump)
from bot.cli.main import main
sys.exit(main())  # the command line as `invite-bot` has it (serve: bot/runtime/allocator.py)
"""


def ask(server: Server, report: Path) -> dict:
    """SIGUSR1 to the server and its figures once written."""
    report.unlink(missing_ok=True)
    os.kill(server.process.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while not report.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the server wrote no figures within 60 s")
        time.sleep(0.05)
    return json.loads(report.read_text())


def mappings(pid: int) -> dict[str, float]:
    """The process's resident memory by kind of mapping (MiB): thread stacks (8 MiB mappings,
    pthread's default), malloc's main heap, other anonymous memory (pymalloc's arenas, malloc's
    other arena and its mmapped blocks), and files (the interpreter, libraries, the store)."""
    kinds = {"stacks": 0.0, "heap": 0.0, "anon": 0.0, "files": 0.0}
    kind, size = "anon", 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's first line
            name = fields[5] if len(fields) > 5 else ""
            kind = "heap" if name == "[heap]" else "files" if name.startswith("/") else "anon"
        elif fields[0] == "Size:":
            size = int(fields[1])
            if kind == "anon" and size in (8192, 8196):
                kind = "stacks"
        elif fields[0] == "Rss:":
            kinds[kind] += int(fields[1]) / 1024
    return kinds


def snapshot(report: Path) -> tracemalloc.Snapshot:
    return tracemalloc.Snapshot.load(str(report) + ".snapshot").filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )


def show_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, group: str, top: int):
    stats = after.compare_to(before, group)
    grown = sum(s.size_diff for s in stats)
    print(f"  traced growth since warm-up: {grown / 2**20:+.2f} MiB; largest {top}:")
    for stat in stats[:top]:
        where = stat.traceback.format(
            limit=8 if group == "traceback" else 1, most_recent_first=True
        )
        print(
            f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks"
            f" (now {stat.size / 1024:.1f} KiB)  {where[0].strip()}"
        )
        for line in where[1:]:
            if line.strip().startswith("File"):
                print(f"  {'':>40}{line.strip()}")


def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="invite-memory-"))
    report = workdir / "figures.json"
    awork = FakeAwork()
    awork_url, awork_server = awork.serve()
    slack = FakeSlack()
    extra = dict(item.split("=", 1) for item in args.env)
    env = serving.serve_env(
        slack.url, awork_url, str(workdir / "bot.sqlite"), SECRET, TOKEN, APPROVER, **extra
    )
    env["INVITE_BENCH_REPORT"] = str(report)
    if args.tracemalloc:
        env["INVITE_BENCH_TRACEMALLOC"] = str(args.frames)
    port = serving.free_port()
    command = [sys.executable, "-c", LAUNCHER, "serve", "--http", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    process = serving.start_server(env, port, workdir / "bot.log", command)
    server = Server("bot", port, process, slack)
    try:
        time.sleep(2)  # start-up work done (the catalog, the first sweep): idle
        rows = [("idle", rss_mb(process.pid), ask(server, report) | mappings(process.pid))]
        for path in PATHS:  # each path once, so that what fills on first use is full
            one_burst(server, path, "warm", 40)
        rows.append(
            (
                f"warm ({server.sent})",
                rss_mb(process.pid),
                ask(server, report) | mappings(process.pid),
            )
        )
        first = snapshot(report) if args.tracemalloc else None
        later = sorted(set(rows[1][2]["modules"]) - set(rows[0][2]["modules"]))
        print(f"imported by the first requests ({len(later)}): {' '.join(later)}")
        warm, target = server.sent, 0
        while target < args.total:
            target = min(args.total, target + args.step)
            mixed_until(server, warm + target, tag=f"mix{target}-")
            figures = ask(server, report) | mappings(process.pid)
            rows.append((f"after {server.sent}", rss_mb(process.pid), figures))
            print_row(*rows[-1], base=rows[1])
            if args.tracemalloc:
                show_growth(first, snapshot(report), args.group, args.top)
        print()
        for row in rows:
            print_row(*row, base=rows[1])
    finally:
        serving.stop_server(process)
        slack.close()
        awork_server.shutdown()
    print(f"(log and store in {workdir})")


def print_row(name: str, rss: float, figures: dict, base: tuple) -> None:
    pym = figures.get("pymalloc", {})
    traced = f" traced {figures['traced_mb']:6.1f}" if "traced_mb" in figures else ""
    print(
        f"{name:>14}: RSS {rss:6.1f} MiB ({rss - base[1]:+5.1f}); malloc in use"
        f" {figures['malloc_in_use_mb']:5.1f}, free in heap {figures['malloc_free_in_heap_mb']:5.1f},"
        f" mmapped {figures['malloc_mmapped_mb']:5.1f}; pymalloc arenas"
        f" {pym.get('arenas allocated current', '?')} (in blocks"
        f" {pym.get('bytes in allocated blocks', 0) / 2**20:.1f} MiB); gc objects"
        f" {figures['gc_objects']}; threads {figures['threads']}{traced}; resident: stacks"
        f" {figures['stacks']:.1f}, heap {figures['heap']:.1f}, anon {figures['anon']:.1f},"
        f" files {figures['files']:.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total", type=int, default=10_000, help="mixed requests after warm-up")
    parser.add_argument("--step", type=int, default=2_000)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--group", default="lineno", choices=("lineno", "traceback", "filename"))
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
