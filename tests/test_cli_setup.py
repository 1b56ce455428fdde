"""Setting up: `invite-bot manifest`, the manifest shipped in the package, the Docker example's
store, one-line start-up errors, `audit | head`, and how the sandbox is guarded."""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml

from bot.cli import manifest
from bot.store import SqliteStore
from tests.serving import SCRIPT, free_port
from tests.test_sandbox import SCHEMAS

ROOT = Path(__file__).parents[1]


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
    **extra: str,
):
    """`invite-bot ARGS` as a process, with only the given configuration (and `input` typed)."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWORK_", "INVITE_"))
    }
    return subprocess.run(
        [str(SCRIPT), *args],
        env={**base, **(env or {}), **extra},
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


# --- the manifest --------------------------------------------------------------------------------


def request_urls(parsed: dict) -> list[str | None]:
    """Slash command, interactivity, options load, event subscriptions: the four request URLs."""
    settings = parsed["settings"]
    return [
        parsed["features"]["slash_commands"][0].get("url"),
        settings["interactivity"].get("request_url"),
        settings["interactivity"].get("message_menu_options_url"),
        settings["event_subscriptions"].get("request_url"),
    ]


def test_shipped_manifest_is_the_repositorys():
    """bot/cli/manifest.yml (package data, in the Docker image) is byte for byte manifest.yml."""
    assert manifest.MANIFEST_FILE == ROOT / "bot" / "cli" / "manifest.yml"
    assert manifest.shipped() == (ROOT / "manifest.yml").read_text(encoding="utf-8")


def test_the_dockerfiles_files_install_every_package_and_the_manifest(tmp_path):
    """What the Dockerfile copies, built as `pip install .` builds it, holds bot.store and
    bot/cli/manifest.yml (bot.store was left out of the install before)."""
    source = tmp_path / "src"
    source.mkdir()
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+(?: \S+)*) \S+$", dockerfile, re.M)
    for line in copied:
        for name in line.split():
            target = source / name
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / name, target)
    built = tmp_path / "lib"
    subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
         "--build-lib", str(built)],
        cwd=source, check=True, capture_output=True,
    )  # fmt: skip
    shipped = built / "bot" / "cli" / "manifest.yml"
    assert shipped.read_text() == (ROOT / "manifest.yml").read_text()
    for top in ("bot", "handlers"):
        expected = {p.relative_to(ROOT) for p in (ROOT / top).rglob("*.py")}
        assert expected <= {p.relative_to(built) for p in (built / top).rglob("*.py")}, top


def test_every_package_directory_is_found_for_installation():
    """Each directory of Python files under bot/ and handlers/ is a package that pyproject's
    package search includes (a directory without __init__.py would be left out)."""
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for top in ("bot", "handlers"):
        for path in (ROOT / top).rglob("*.py"):
            package = ".".join(path.parent.relative_to(ROOT).parts)
            assert (path.parent / "__init__.py").exists(), package
            assert any(fnmatch.fnmatch(package, pattern) for pattern in include), package


def test_manifest_constants_follow_the_code():
    """The manifest's path and command names are the ones the bot serves and answers to; the
    scope list read without YAML is YAML's."""
    from bot.runtime.web import EVENTS_PATH
    from handlers.commands import COMMAND

    assert manifest.EVENTS_PATH == EVENTS_PATH
    assert all(COMMAND.match(name) for name in manifest.COMMANDS)
    parsed = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert manifest.bot_scopes() == parsed["oauth_config"]["scopes"]["bot"]


def test_manifest_command_fills_in_the_url():
    """`invite-bot manifest --url U` prints valid YAML with all four request URLs U/slack/events."""
    run = cli("manifest", "--url", "https://bot.example.com")
    assert run.returncode == 0 and run.stderr == ""
    parsed = yaml.safe_load(run.stdout)
    assert request_urls(parsed) == ["https://bot.example.com/slack/events"] * 4
    assert parsed["features"]["slash_commands"][0]["command"] == "/invite"
    assert parsed["settings"]["socket_mode_enabled"] is False
    assert "invite-bot.example.com" not in run.stdout
    original = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert parsed["oauth_config"] == original["oauth_config"]
    assert parsed["display_information"] == original["display_information"]


def test_manifest_url_may_end_in_slack_events_or_a_slash():
    """A URL given with /slack/events or a trailing slash is not doubled."""
    for url in ("https://bot.example.com/", "https://bot.example.com/slack/events"):
        parsed = yaml.safe_load(manifest.render(url))
        assert request_urls(parsed) == ["https://bot.example.com/slack/events"] * 4


def test_manifest_command_name_is_filled_in_everywhere():
    """--command /awork-invite names the slash command and every mention of /invite."""
    run = cli("manifest", "--url", "https://bot.example.com/invite", "--command", "/awork-invite")
    assert run.returncode == 0
    parsed = yaml.safe_load(run.stdout)
    assert parsed["features"]["slash_commands"][0]["command"] == "/awork-invite"
    assert "Type /awork-invite to ask" in parsed["display_information"]["long_description"]
    assert not re.search(r"(?<![\w/-])/invite\b(?!-)", run.stdout.replace("example.com/invite", ""))
    assert request_urls(parsed) == ["https://bot.example.com/invite/slack/events"] * 4


def test_manifest_for_socket_mode_has_no_request_urls():
    """--socket: socket_mode_enabled true and no request URL anywhere."""
    run = cli("manifest", "--socket")
    assert run.returncode == 0
    parsed = yaml.safe_load(run.stdout)
    assert parsed["settings"]["socket_mode_enabled"] is True
    assert request_urls(parsed) == [None] * 4
    assert "url:" not in run.stdout and "example.com" not in run.stdout
    assert parsed["settings"]["interactivity"]["is_enabled"] is True


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--url", "http://bot.example.com"], "--url must be the bot's public https:// address"),
        (["--url", "bot.example.com"], "--url must be the bot's public https:// address"),
        (["--url", "https://bot.example.com", "--command", "/hire"], "--command must be one of"),
        ([], "give --url"),
        (["--url", "https://[bad"], "--url must be the bot's public https:// address"),
        (["--url", "https://bot.example.com:port"], "--url must be the bot's public https://"),
    ],
    ids=["http", "no-scheme", "unknown-command", "neither", "malformed", "bad-port"],
)
def test_manifest_refuses_what_slack_or_the_bot_would_not_take(args, words):
    """A non-https URL, a command the bot does not answer to, or no URL without --socket: one
    line, exit 2."""
    run = cli("manifest", *args)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("invite-bot: ") and words in run.stderr
    assert len(run.stderr.splitlines()) == 1


def test_manifest_needs_no_configuration():
    """It prints even where the bot's settings would not load."""
    run = cli("manifest", "--socket", INVITE_DATABASE_URL="mysql://x/y")
    assert run.returncode == 0 and yaml.safe_load(run.stdout)


# --- the Docker example keeps its store ----------------------------------------------------------


def active_names(path: Path) -> set[str]:
    return {
        line.split("=", 1)[0].strip()
        for line in path.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }


def test_env_example_does_not_override_the_images_settings():
    """`docker run --env-file .env` must not move the store off /data (or HOST/PORT): no name the
    Dockerfile sets with ENV is set in .env.example."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    image_env = set(re.findall(r"^(?:ENV)?\s+([A-Z][A-Z0-9_]+)=", dockerfile, re.M))
    assert {"INVITE_DB_PATH", "HOST", "PORT"} <= image_env
    assert not active_names(ROOT / ".env.example") & image_env
    assert "INVITE_DB_PATH" not in active_names(ROOT / ".env.example")
    assert "# INVITE_DB_PATH=" in (ROOT / ".env.example").read_text()


def test_plain_invite_bot_with_env_example_copied_as_it_is_starts_the_shell(tmp_path):
    """`cp .env.example .env` and plain `invite-bot`, before any token is filled in, is the
    shell (as the README says of no Slack tokens), not a server refusing to start."""
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    run = cli(cwd=tmp_path, input="quit\n")
    assert run.returncode == 0, run.stderr
    assert "sandbox" in run.stdout.lower() and "SLACK_SIGNING_SECRET" not in run.stderr


def unwritable(tmp_path: Path, kind: str) -> Path:
    if kind == "read-only directory":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only directory; the other kinds still run")
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return folder / "invite-bot.sqlite"
    if kind == "below a file":
        (tmp_path / "file").write_text("")
        return tmp_path / "file" / "invite-bot.sqlite"
    (tmp_path / "folder.sqlite").mkdir()
    return tmp_path / "folder.sqlite"


@pytest.mark.parametrize("kind", ["read-only directory", "below a file", "a directory"])
def test_unwritable_store_is_one_line_at_start(tmp_path, env, kind):
    """`serve` with a store path it cannot write: exit 2 and exactly one line, 'invite-bot:
    cannot write the store at PATH: why', no traceback."""
    path = unwritable(tmp_path, kind)
    env = {**env, "INVITE_DB_PATH": str(path)}
    run = cli("serve", "--http", "--port", str(free_port()), env=env, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stdout == "" and len(run.stderr.splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"invite-bot: cannot write the store at {path}: ")
    assert "Traceback" not in run.stderr


# The command line's `main` with slack_sdk's backoff between retries at 0.01 s, as the
# in-process tests shorten it (bot.runtime.slack_clients.RETRY_INTERVALS): the retries of a
# refused connection are all still made, without their ~2 s of waits.
QUICK_SLACK_RETRIES = """
import sys
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from bot.runtime import slack_clients
slack_clients.RETRY_INTERVALS = FixedValueRetryIntervalCalculator(0.01)
from bot.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_unreachable_slack_is_one_line_at_start(tmp_path, env):
    """`serve` with Slack unreachable: one line, not slack_sdk's line per attempt and retry."""
    env = {**env, "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"}
    run = subprocess.run(
        [sys.executable, "-c", QUICK_SLACK_RETRIES, "serve", "--http", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode == 2
    assert len(run.stderr.splitlines()) == 1, run.stderr
    assert re.fullmatch(
        r"invite-bot: could not reach Slack at http://127\.0\.0\.1:\d+/api/ \(Connection refused\)\n",
        run.stderr,
    )


def test_audit_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    """`invite-bot audit | head -1`: no BrokenPipeError, nothing on stderr."""
    path = tmp_path / "store.sqlite"
    store = SqliteStore(str(path))
    try:
        for i in range(3000):  # ~200 kB of lines, more than a pipe holds
            store.record("submitted", f"inv-{i:06d}", email="someone@example.com")
    finally:
        store.close()
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "AWORK_", "INVITE_"))
    }
    process = subprocess.Popen(
        [str(SCRIPT), "audit"],
        env={**base, "INVITE_DB_PATH": str(path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert b"inv-000000" in process.stdout.readline()
    process.stdout.close()  # the reader has what it wanted
    stderr = process.stderr.read().decode()
    process.wait(timeout=30)
    assert stderr == ""
    assert process.returncode in (0, 1)


# --- the sandbox's guard -------------------------------------------------------------------------


def start_sandbox(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    process = subprocess.Popen(
        [str(SCRIPT), "sandbox", "--port", str(port), "--db", str(tmp_path / "s.sqlite"), *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()
    url = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(f"{url}/roles")
            return process, url, first
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_sandbox_with_an_api_key_requires_it(tmp_path):
    """--api-key K: no key or a wrong one gets 401 `unauthorized` (awork's ErrorResponse), K gets
    200; its first line says so."""
    process, url, first = start_sandbox(tmp_path, "--api-key", "k-123")
    try:
        assert "only requests with 'Authorization: Bearer <--api-key>' are answered" in first
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "k-123"}):
            refused = httpx.get(f"{url}/roles", headers=headers)
            assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
            document = {
                "$ref": "#/components/schemas/ErrorResponse",
                "components": {"schemas": SCHEMAS},
            }
            jsonschema.validate(refused.json(), document)
        answered = httpx.get(f"{url}/roles", headers={"Authorization": "Bearer k-123"})
        assert answered.status_code == 200 and answered.json()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_sandbox_without_an_api_key_says_it_answers_anyone_on_loopback(tmp_path):
    """No --api-key: it binds 127.0.0.1 and its first line says anyone reaching the port is answered."""
    process, url, first = start_sandbox(tmp_path)
    try:
        assert first.startswith("awork sandbox at http://127.0.0.1:")
        assert "no --api-key, so it answers anyone who can reach 127.0.0.1:" in first
        assert httpx.get(f"{url}/roles").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_readme_says_how_the_sandbox_is_guarded():
    """The README's sandbox paragraph names the Bearer key, the open default and the loopback bind."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**The awork sandbox on its own.**") :].split("\n\n")[0]
    for words in ("Authorization: Bearer", "anyone", "127.0.0.1"):
        assert words in section


def test_readme_names_every_command():
    """Every `invite-bot` subcommand, doctor and manifest too, is in the README."""
    from bot.cli.parser import build_parser

    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert {"doctor", "manifest"} <= set(commands.choices)
    readme = (ROOT / "README.md").read_text()
    for name in commands.choices:
        assert f"invite-bot {name}" in readme, name
