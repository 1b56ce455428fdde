"""The docs say what the code has: metrics, configuration, commands, and a README that gets to the point."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.signature import SignatureVerifier

from bot.runtime import metrics
from bot.runtime.config import Settings
from bot.runtime.web import wsgi_app
from tests.conftest import SIGNING_SECRET
from tests.serving import command_submission

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# Variables the tests and benchmarks read, not the bot.
# The tests' and benchmarks' own, and the standard proxy variable urllib and slack_sdk read.
NOT_SETTINGS = {"INVITE_TEST_DATABASE_URL", "INVITE_BENCH_DATABASE_URL", "HTTP_PROXY"}


def section(path: Path, heading: str) -> str:
    """The text under `heading` up to the next heading of the same level."""
    text = path.read_text(encoding="utf-8")
    level = heading.split(" ", 1)[0]
    body = text.split(f"\n{heading}\n", 1)[1]
    return re.split(rf"\n{level} ", body, maxsplit=1)[0]


def table(text: str) -> list[list[str]]:
    """The body rows of the markdown tables in `text`, as lists of cells."""
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows[2:] if not set(row[0]) <= {"-", " "}]


def documented_metrics() -> dict[str, tuple[str, frozenset[str]]]:
    """docs/operations.md's metric table: exposed name -> (type, label names)."""
    rows = table(section(ROOT / "docs" / "operations.md", "## Metrics"))
    return {row[0].strip("`"): (row[1], frozenset(re.findall(r"`(\w+)`", row[2]))) for row in rows}


def exposed_name(name: str, kind: str) -> str:
    return f"{name}_total" if kind == "counter" else name


def served_metrics(bot, slack) -> dict[str, tuple[str, list[dict[str, str]]]]:
    """GET /metrics after a signed /invite: exposed name -> (type, each sample's labels)."""
    body = command_submission("ada@example.com")
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(
            timestamp=stamp, body=body
        ),
    }
    with httpx.Client(
        transport=httpx.WSGITransport(app=wsgi_app(bot)), base_url="http://bot"
    ) as client:
        assert client.post("/slack/events", content=body, headers=headers).status_code == 200
        slack.wait_for("chat.postMessage")
        text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {
        exposed_name(name, family.type): (family.type, [s.labels for s in family.samples])
        for name, family in families.items()
        if name.startswith("invitebot_")
        # prometheus_client's creation times, one `_created` gauge beside each counter/histogram
        and not (name.endswith("_created") and name.removesuffix("_created") in families)
    }


def test_documented_metrics_are_what_metrics_serves(bot, slack):
    """docs/operations.md's metric table and GET /metrics name the same families, types and labels."""
    documented = documented_metrics()
    served = served_metrics(bot, slack)
    assert {name: kind for name, (kind, _) in documented.items()} == {
        name: kind for name, (kind, _) in served.items()
    }
    declared = {
        exposed_name(c.describe()[0].name, c.describe()[0].type): frozenset(c._labelnames)
        for c in vars(metrics).values()
        if isinstance(c, MetricWrapperBase)
    }
    assert {name: labels for name, (_, labels) in documented.items()} == declared
    for name, (_, samples) in served.items():
        for labels in samples:
            assert set(labels) - {"le"} == documented[name][1], (name, labels)
    labelled = [name for name, (_, samples) in served.items() if samples and documented[name][1]]
    assert {"invitebot_http_requests_total", "invitebot_ack_seconds"} <= set(labelled)


def test_readme_configuration_table_is_the_settings_class():
    """Every variable in the README's configuration table is a Settings field, and every field is in it."""
    rows = table(section(README, "## Configuration"))
    documented = {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row[0])}
    fields = {field.alias or name.upper() for name, field in Settings.model_fields.items()}
    assert documented == fields


def test_docs_name_only_variables_the_bot_reads():
    """Every environment variable named in the README or docs/ is one Settings reads (or a
    test's, or the standard HTTP_PROXY)."""
    fields = {field.alias for field in Settings.model_fields.values()}
    for path in [README, *DOCS]:
        text = path.read_text(encoding="utf-8")
        named = set(re.findall(r"\b(?:SLACK|AWORK|INVITE|LOG|HTTP)_[A-Z0-9_]*[A-Z0-9]\b", text))
        assert named - NOT_SETTINGS <= fields, (path.name, named - NOT_SETTINGS - fields)


def test_readme_gets_to_the_point():
    """README.md has at most 300 lines and its "Try it" heading within the first 60."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300
    assert "## Try it" in lines[:60]


def test_readme_tests_as_ci_does():
    """The README's test commands are the install and pytest lines .ci/run runs, with its database variable."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    [install] = [line for line in ci if "pip install" in line]
    [pytest_line] = [line for line in ci if line.startswith(".venv/bin/pytest")]
    assert any(line.startswith("export INVITE_TEST_DATABASE_URL=") for line in ci)
    block = section(README, "## Test it").split("```sh\n", 1)[1].split("```", 1)[0]
    assert install in block.splitlines()
    assert any(
        re.fullmatch(rf"INVITE_TEST_DATABASE_URL=postgresql://\S+ {re.escape(pytest_line)}", line)
        for line in block.splitlines()
    )


def test_docs_link_to_files_that_exist():
    """Every relative link in the README and docs/ leads to a file of the repository."""
    for path in [README, *DOCS]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            assert (path.parent / target).exists(), (path.name, target)


def test_docs_name_files_that_exist():
    """Every path of the code named in the README and docs/ (`bot/…`, `handlers/…`, `tests/…`, `bench/…`) exists."""
    for path in [README, *DOCS]:
        text = path.read_text(encoding="utf-8")
        for name in re.findall(r"`((?:bot|handlers|tests|bench)/[\w/.]*)`", text):
            assert (ROOT / name).exists(), (path.name, name)
