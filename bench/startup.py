"""Start-up of the bot and of the floor (bench/floor.py, with the bot's libraries or without),
from exec to the first 200 on /healthz, alternating; and the modules each had imported by then
(`python -X importtime`). Used by bench/hot_paths.py."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests import serving
from tests.fakes.slack import FakeSlack


def floor_command(
    floor: Path, kind: str, port: int, flags: tuple[str, ...] = ()
) -> list[str] | None:
    """The command line of `kind` when it is a floor (with the bot's libraries or without);
    None for the bot."""
    if not kind.startswith("floor"):
        return None
    libraries = ["--libraries"] if kind == "floor_libraries" else []
    return [sys.executable, *flags, str(floor), str(port), *libraries]


def startup(floor: Path, kind: str, env: dict[str, str], workdir: Path, importtime: bool = False):
    """Seconds from exec to the first 200 on /healthz; with `importtime`, also how many modules
    had been imported by then."""
    port = serving.free_port()
    flags = ("-X", "importtime") if importtime else ()
    command = floor_command(floor, kind, port, flags)
    if command is None:
        command = [sys.executable, *flags, "-m", "bot", "serve", "--http", "--port", str(port)]
        command += ["--host", "127.0.0.1"]
    errors = (workdir / f"startup-{kind}.err").open("w+")
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=errors, cwd=workdir
    )
    import httpx

    try:
        while time.monotonic() - started < 30:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    seconds = time.monotonic() - started
                    errors.flush()
                    errors.seek(0)
                    names = [ln.rsplit("|", 1)[-1].strip() for ln in errors if "|" in ln]
                    ours = [n for n in names if n.split(".")[0] in ("bot", "handlers", "tests")]
                    if kind != "bot" and ours:
                        raise RuntimeError(f"the floor imported the bot's {ours[:3]}")
                    return seconds, len(names) - 1  # less the header line
            except httpx.TransportError:
                time.sleep(0.005)
        raise RuntimeError(f"{kind} did not start within 30 s")
    finally:
        serving.stop_server(process)
        errors.close()


def startups(floor: Path, env: dict[str, str], workdir: Path, times: int = 5) -> dict:
    """Start-up of the bot, the floor and the floor with the bot's libraries, alternating,
    `times` each; then one start each under `-X importtime` for the modules imported by the
    first 200 on /healthz."""
    serving.compiled()  # as installed: bytecode beside the sources
    slack = FakeSlack()  # both ask Slack's auth.test before they serve
    env = {**env, "SLACK_API_URL": slack.url}
    try:
        starts: dict[str, list[float]] = {"bot": [], "floor": [], "floor_libraries": []}
        for _ in range(times):
            for kind, seconds in starts.items():
                seconds.append(startup(floor, kind, env, workdir)[0])
        return {
            kind: {
                "median_s": round(statistics.median(seconds), 3),
                "min_s": round(min(seconds), 3),
                "modules": startup(floor, kind, env, workdir, importtime=True)[1],
            }
            for kind, seconds in starts.items()
        }
    finally:
        slack.close()
