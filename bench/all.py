"""Every published figure in one run, side by side, for the README's table.

- ack latency (p50/p99) of a burst of /invite with awork slow, against a naive Bolt handler that
  calls awork before acking, as a ratio (bench/ack_latency.py);
- role-picker latency with a cold cache (fresh store, awork slow) and a warm one;
- a bulk of 500 against `invite-bot sandbox` limited to 50 calls/s, as a ratio of the limit's
  bound (bench/bulk_throughput.py);
- every hot path (the form, an inline ask, an Approve click, the role picker, the App Home)
  against the floor: a bare Bolt app on the same server that acks inline, imports nothing of
  the bot and makes the same Slack calls after the ack (bench/hot_paths.py, bench/floor.py);
- idle RSS and RSS after 10,000 mixed requests, start-up to the first /healthz, each against
  the floor's;
- /healthz while 300 stalled connections are held open (bench/stalled.py).
Run: .venv/bin/python bench/all.py
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import ack_latency, bulk_throughput, hot_paths, stalled

PATH_NAMES = {
    "modal": "`/invite` opening the form",
    "inline": "inline `/invite a@x.com` (sqlitedict)",
    "approve": "an Approve click",
    "options": "role picker options",
    "home": "App Home (`app_home_opened`)",
}


def path_rows(hot: dict) -> list[tuple[str, str, str, str]]:
    """A row per hot path: the bot's p50 / p99 against the floor's (median of the rounds)."""
    rows = []
    for path, name in PATH_NAMES.items():
        row = hot["paths"][path]
        bots = [("bot", name)]
        if path == "inline" and "bot_pg" in row:
            bots.append(("bot_pg", name.replace("sqlitedict", "PostgreSQL")))
        for bot, label in bots:
            ours, floor, ratio = row[bot], row["floor"], row[f"{bot}_to_floor"]
            rows.append(
                (
                    f"ack p50 / p99, {label}, bursts of {hot['burst']}",
                    f"{ours['p50_ms']:.1f} / {ours['p99_ms']:.1f} ms",
                    f"{floor['p50_ms']:.1f} / {floor['p99_ms']:.1f} ms (floor)",
                    f"{ratio['p50']:.2f} / {ratio['p99']:.2f}",
                )
            )
    return rows


def main() -> None:
    # On PostgreSQL too when INVITE_BENCH_DATABASE_URL names one.
    hot = hot_paths.measure(rounds=3, database_url=os.environ.get("INVITE_BENCH_DATABASE_URL"))
    ack = ack_latency.measure()
    pickers = ack_latency.measure_pickers()
    bulk = bulk_throughput.measure(stand_in="sandbox")
    held = stalled.measure()
    bot_rss, floor_rss, up = hot["bot_rss_mb"], hot["floor_rss_mb"], hot["startup"]
    after = next(key for key in bot_rss if key.startswith("after_"))
    sent = int(after.removeprefix("after_"))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    rows = [
        ("ack p50 / p99, 40 x /invite, awork 1.5 s a call",
         f"{ack['bot']['p50_ms']:.0f} / {ack['bot']['p99_ms']:.0f} ms",
         f"{ack['naive_baseline']['p50_ms']:.0f} / {ack['naive_baseline']['p99_ms']:.0f} ms (naive)",
         f"{ack['p99_ratio_bot_to_naive']:.3f}"),
        ("forms opened within 3 s / acked (last form opened after, per round)",
         f"{ack['bot']['forms_opened_within_3s']} / {ack['bot']['acked_200']} "
         f"({', '.join(str(v) for v in ack['bot']['last_form_opened_ms'])} ms)",
         f"{ack['floor']['forms_opened_within_3s']} / {ack['floor']['acked_200']} (floor)", "—"),
        ("role picker, cold cache (fresh store, awork slow): p50 / max",
         f"{pickers['cold']['p50_ms']:.0f} / {pickers['cold']['max_ms']:.0f} ms, "
         f"{pickers['cold']['options']} options", "—", "—"),
        ("role picker, warm cache: p50 / max",
         f"{pickers['warm']['p50_ms']:.0f} / {pickers['warm']['max_ms']:.0f} ms, "
         f"{pickers['warm']['options']} options (warm after {pickers['cache_warm_after_s']} s)",
         "—", "—"),
        ("role picker, awork down: p50 / max",
         f"{ack['picker']['awork_down']['p50_ms']:.0f} / {ack['picker']['awork_down']['max_ms']:.0f} ms",
         "—", "—"),
        (f"bulk of {bulk['people']} vs sandbox at {bulk['per_second']}/s",
         f"{bulk['seconds']} s", f"{bulk['bound_seconds']:.0f} s (the limit's bound)",
         f"{bulk['ratio_to_bound']:.2f}"),
        ("bulk: invited / duplicates / lost / 429s",
         f"{bulk['invited']} / {bulk['duplicates']} / {bulk['lost']} / {bulk['answered_429']}",
         "—", "—"),
        *path_rows(hot),
        ("idle RSS (one waitress process)", f"{bot_rss['idle']:.0f} MiB",
         f"{floor_rss['idle']:.0f} MiB (floor)", f"{bot_rss['idle'] / floor_rss['idle']:.2f}"),
        (f"RSS after {sent:,} mixed requests", f"{bot_rss[after]:.0f} MiB",
         f"{floor_rss[after]:.0f} MiB (floor)", f"{bot_rss[after] / floor_rss[after]:.2f}"),
        (f"/healthz p50 / p99 with {held['stalled']} stalled connections open",
         f"{held['while_stalled']['healthz_p50_ms']:.1f} / {held['while_stalled']['healthz_p99_ms']:.1f} ms "
         f"({held['held_through_measurement']} held; all closed {held['all_closed_after_s']} s after"
         f" opening, deadline {held['deadline_s']:.0f} s)",
         f"{held['quiet']['healthz_p50_ms']:.1f} / {held['quiet']['healthz_p99_ms']:.1f} ms (none stalled)",
         f"{held['healthz_p99_ratio']:.2f}"),
        ("start-up to first 200 on /healthz (median of 5)",
         f"{up['bot']['median_s']:.2f} s ({up['bot']['modules']} modules)",
         f"{up['floor']['median_s']:.2f} s ({up['floor']['modules']} modules, floor)",
         f"{up['bot']['median_s'] / up['floor']['median_s']:.2f}"),
    ]  # fmt: skip
    print(f"{machine}, {datetime.date.today()}")
    print("| figure | bot | baseline | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    for name, verdict in hot["targets"].items():
        print(f"target {name}: {verdict}")
    print(
        json.dumps(
            {"hot_paths": hot, "ack": ack, "pickers": pickers, "bulk": bulk, "stalled": held},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
