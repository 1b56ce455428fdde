"""Every published figure in one run, side by side, for the README's table.

- ack latency (p50/p99) of a burst of /invite with awork slow, against a naive Bolt handler that
  calls awork before acking, as a ratio (bench/ack_latency.py);
- role-picker latency with a cold cache (fresh store, awork slow) and a warm one;
- a bulk of 500 against `invite-bot sandbox` limited to 50 calls/s, as a ratio of the limit's
  bound (bench/bulk_throughput.py);
- ack p99 against a bare Bolt app served the same way (ack and a one-field modal);
- idle RSS of the bot (one process) and its start-up time to the first /healthz;
- /healthz while 300 stalled connections are held open (bench/stalled.py).
Run: .venv/bin/python bench/all.py
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import ack_latency, bulk_throughput, stalled


def main() -> None:
    ack = ack_latency.measure()
    pickers = ack_latency.measure_pickers()
    bulk = bulk_throughput.measure(stand_in="sandbox")
    held = stalled.measure()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    rows = [
        ("ack p50 / p99, 40 x /invite, awork 1.5 s a call",
         f"{ack['bot']['p50_ms']:.0f} / {ack['bot']['p99_ms']:.0f} ms",
         f"{ack['naive_baseline']['p50_ms']:.0f} / {ack['naive_baseline']['p99_ms']:.0f} ms (naive)",
         f"{ack['p99_ratio_bot_to_naive']:.3f}"),
        ("forms opened within 3 s / acked (last form opened after, per round)",
         f"{ack['bot']['forms_opened_within_3s']} / {ack['bot']['acked_200']} "
         f"({', '.join(str(v) for v in ack['bot']['last_form_opened_ms'])} ms)",
         f"{ack['bare']['forms_opened_within_3s']} / {ack['bare']['acked_200']} (bare Bolt)", "—"),
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
        ("ack p99 (median of rounds) vs bare Bolt (ack + one-field modal)",
         f"{statistics.median(ack['bot']['p99_per_round_ms']):.0f} ms",
         f"{statistics.median(ack['bare']['p99_per_round_ms']):.0f} ms (bare Bolt)",
         f"{ack['p99_ratio_bot_to_bare']:.3f}"),
        ("idle RSS (one waitress process)", f"{ack['idle_rss_mb']:.0f} MB",
         f"{ack['bare_idle_rss_mb']:.0f} MB (bare Bolt)",
         f"{ack['idle_rss_mb'] / ack['bare_idle_rss_mb']:.2f}"),
        (f"/healthz p50 / p99 with {held['stalled']} stalled connections open",
         f"{held['while_stalled']['healthz_p50_ms']:.1f} / {held['while_stalled']['healthz_p99_ms']:.1f} ms "
         f"({held['held_through_measurement']} held; all closed {held['all_closed_after_s']} s after"
         f" opening, deadline {held['deadline_s']:.0f} s)",
         f"{held['quiet']['healthz_p50_ms']:.1f} / {held['quiet']['healthz_p99_ms']:.1f} ms (none stalled)",
         f"{held['healthz_p99_ratio']:.2f}"),
        ("start-up to first 200 on /healthz", f"{ack['startup_s']:.2f} s",
         f"{ack['bare_startup_s']:.2f} s (bare Bolt)",
         f"{ack['startup_s'] / ack['bare_startup_s']:.2f}"),
    ]  # fmt: skip
    print(f"{machine}, {datetime.date.today()}")
    print("| figure | bot | baseline | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print(json.dumps({"ack": ack, "pickers": pickers, "bulk": bulk, "stalled": held}, indent=2))


if __name__ == "__main__":
    main()
