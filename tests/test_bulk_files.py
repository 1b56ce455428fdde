"""Issue 11 item 7: a people list is read as CSV (quotes, one detected delimiter, right line
numbers), and the attached file is fetched only from https://files.slack.com, without
redirects, streamed under a byte cap and a total deadline."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from bot.domain.people import parse_people
from bot.ui import bulk_blocks
from handlers import files as downloads
from tests.conftest import approval_request_id
from tests.slack_requests import GENERAL
from tests.test_bulk_scenarios import approval_posts
from tests.test_text_hygiene import dirty

CAP = downloads.MAX_FILE_BYTES


def submit_bulk(driver, fields, user="UREQ"):
    return driver.view_submission(bulk_blocks.bulk_form(GENERAL), fields, user)


def people_of(text: str) -> list[tuple[str, str | None, str | None, int]]:
    people, errors = parse_people(text)
    assert errors == []
    return [(p.email, p.first_name, p.last_name, p.line) for p in people]


# --- CSV --------------------------------------------------------------------------------------


def test_a_quoted_field_holding_the_other_delimiters_is_one_field():
    """`"Ada; Countess"` in a comma list and `"Lovelace, Ada"` in a semicolon list are one field."""
    assert people_of('ada@example.com,"Ada; Countess",Lovelace\nb@x.com,B,C\n') == [
        ("ada@example.com", "Ada; Countess", "Lovelace", 1),
        ("b@x.com", "B", "C", 2),
    ]
    assert people_of('ada@example.com;"Lovelace, Ada"\nb@x.com;B\n') == [
        ("ada@example.com", "Lovelace, Ada", None, 1),
        ("b@x.com", "B", None, 2),
    ]


def test_a_quoted_field_after_a_space_is_still_quoted():
    """`ada@x.com, "Lovelace, Ada"` (as people type it) has two fields, not three."""
    assert people_of('ada@example.com, "Lovelace, Ada", "Pat ""PJ"" Q"\n') == [
        ("ada@example.com", "Lovelace, Ada", 'Pat "PJ" Q', 1)
    ]


@pytest.mark.parametrize("mark", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_each_delimiter_is_detected(mark):
    """Comma, semicolon and tab lists, with a header, each read the same."""
    text = "\n".join(
        mark.join(row)
        for row in (
            ("email", "first name", "last name"),
            ("ada@example.com", "Ada", "Lovelace"),
            ("grace@example.com", "Grace", "Hopper"),
        )
    )
    assert people_of(text) == [
        ("ada@example.com", "Ada", "Lovelace", 2),
        ("grace@example.com", "Grace", "Hopper", 3),
    ]


def test_the_delimiter_is_the_one_after_the_address():
    """A tab list with commas in its names, and a one-line semicolon list with a comma in the
    name, split where the address ends (csv.Sniffer would take the comma in both)."""
    assert people_of("a@x.com\tLovelace, Ada\tX\nb@x.com\tHopper, Grace\tY\n") == [
        ("a@x.com", "Lovelace, Ada", "X", 1),
        ("b@x.com", "Hopper, Grace", "Y", 2),
    ]
    assert people_of("a@x.com;Lovelace, Ada\n") == [("a@x.com", "Lovelace, Ada", None, 1)]
    assert people_of("a@x.com,Ada; Countess,L\n") == [("a@x.com", "Ada; Countess", "L", 1)]


def test_bare_addresses_and_empty_fields_need_no_delimiter():
    """A list of bare addresses works; empty fields keep their place; trailing ones vanish."""
    assert people_of("a@x.com\nb@x.com\n") == [
        ("a@x.com", None, None, 1),
        ("b@x.com", None, None, 2),
    ]
    assert people_of("a@x.com,,Lovelace\nb@x.com,,\n") == [
        ("a@x.com", None, "Lovelace", 1),
        ("b@x.com", None, None, 2),
    ]


def test_a_line_break_inside_quotes_keeps_the_record_and_the_line_numbers():
    """A quoted multi-line name is one record; the records after it keep their own line
    numbers, through blank lines, comments and CRLF."""
    text = 'email,name\r\na@x.com,"Ada\r\nLovelace"\r\n\r\n# a comment, with "a quote\r\nnope\r\nb@x.com,B\r\n'
    people, errors = parse_people(text)
    assert [(p.email, p.first_name, p.line) for p in people] == [
        ("a@x.com", "Ada Lovelace", 2),
        ("b@x.com", "B", 7),
    ]
    assert errors == ["Line 6: “nope” is not an email address."]


def test_an_unclosed_quote_is_an_error_not_a_swallowed_list():
    """An unclosed quote names its line instead of quietly eating the people after it."""
    people, errors = parse_people('a@x.com\nb@x.com, "Bob\nc@x.com\nd@x.com\n')
    assert [p.email for p in people] == ["a@x.com"]
    assert errors == ["Line 2: could not be read; check its quotes."]
    people, errors = parse_people('a@x.com, "Ada" Lovelace\nb@x.com\n')
    assert [p.email for p in people] == ["b@x.com"]
    assert errors[0].startswith("Line 1: could not be read")


def test_a_quoted_address_and_a_bom_are_read():
    """A spreadsheet's quoted cells and a byte-order mark at the start are no trouble."""
    assert people_of('\ufeff"email";"first"\n"a@x.com";"Ada"\n') == [("a@x.com", "Ada", None, 2)]


def test_bulk_list_names_and_addresses_are_cleaned():
    """A pasted or uploaded list loses invisible characters in every field."""
    people, errors = parse_people(f"{dirty('ada@example.com')},{dirty('Ada')},{dirty('L')}\n")
    assert errors == []
    assert [(p.email, p.first_name, p.last_name) for p in people] == [
        ("ada@example.com", "Ada", "L")
    ]


# --- the download: where from -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://files.slack.com/files-pri/T1-F1/x.csv",
        "https://files.slack.com:8443/files-pri/T1-F1/x.csv",
        "https://evil.example/files-pri/T1-F1/x.csv",
        "https://files.slack.com.evil.example/x.csv",
        "https://files.slack.com@evil.example/x.csv",
        "https://user@files.slack.com/x.csv",
        "https://slack.com/files-pri/T1-F1/x.csv",
        "http://127.0.0.1:9/files/x.csv",
        "files.slack.com/x.csv",
        "https://",
    ],
)
def test_only_https_files_slack_com_on_the_default_port_is_fetched(driver, files, url):
    """Any other scheme, host, port or a user part is refused as a field error, never fetched."""
    attached = files.file("x.csv", "a@x.com\n", url=url)
    response = submit_bulk(driver, {"people_file": attached})
    assert json.loads(response.body)["errors"]["people_file"] == downloads.NOT_SLACKS
    assert files.requests == []


def test_the_default_port_may_be_spelled_out():
    """`:443` is the default port of https: the same URL."""
    assert downloads.slack_file_url("https://files.slack.com:443/files-pri/x") is not None


def test_a_redirect_is_not_followed(driver, files):
    """A 302, even to Slack, is refused in words that say so; only one request was made."""
    files.answers["x.csv"] = httpx.Response(302, headers={"Location": "https://evil.example/steal"})
    attached = files.file("x.csv", "a@x.com\n")
    response = submit_bulk(driver, {"people_file": attached})
    error = json.loads(response.body)["errors"]["people_file"]
    assert error == downloads.REDIRECTED and "no redirects" in error
    assert [str(r.url) for r in files.requests] == [files.url("x.csv")]


def test_a_compressed_answer_is_refused(driver, files):
    """A body compressed despite `Accept-Encoding: identity` (its size unknown) is not unpacked."""
    files.answers["x.csv"] = httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, content=iter([b"\x1f\x8b..."])
    )
    response = submit_bulk(driver, {"people_file": files.file("x.csv", "a@x.com\n")})
    assert json.loads(response.body)["errors"]["people_file"] == downloads.UNREADABLE
    assert files.requests[0].headers["Accept-Encoding"] == "identity"


# --- the download: how much and how long ----------------------------------------------------------


def test_an_endless_body_is_cut_at_the_cap(driver, files):
    """A file that claims to be small and never ends is refused after the cap plus one chunk."""
    chunk = b"someone@example.com\n" * 3277  # about 64 KB, as the network hands it over
    sent = [0]

    def endless():
        while True:
            sent[0] += len(chunk)
            yield chunk

    attached = files.file("x.csv", "a@x.com\n")
    files.files["x.csv"] = endless
    started = time.monotonic()
    response = submit_bulk(driver, {"people_file": attached})
    assert json.loads(response.body)["errors"]["people_file"] == downloads.TOO_BIG
    assert CAP < sent[0] <= CAP + len(chunk)
    assert time.monotonic() - started < downloads.DEADLINE


def test_a_file_bigger_than_the_cap_is_refused_by_its_size_unread(driver, files):
    """Slack's stated size over the cap is refused before anything is fetched."""
    attached = files.file("x.csv", "a@x.com\n")
    attached[0]["size"] = CAP + 1
    response = submit_bulk(driver, {"people_file": attached})
    assert json.loads(response.body)["errors"]["people_file"] == downloads.TOO_BIG
    assert files.requests == []


def test_a_trickling_file_is_refused_at_the_deadline(driver, files, monkeypatch):
    """A host that keeps sending a little, slowly, is given up on after the deadline in all."""
    monkeypatch.setattr(downloads, "DEADLINE", 0.4)  # shorter than in production, same rule
    sent, readers = [0], []

    def trickle():
        readers.append(threading.current_thread())  # the download's own thread reads it
        while True:
            sent[0] += 1
            yield b"a"
            time.sleep(0.1)

    attached = files.file("x.csv", "a@x.com\n")
    files.files["x.csv"] = trickle
    started = time.monotonic()
    response = submit_bulk(driver, {"people_file": attached})
    took = time.monotonic() - started
    assert json.loads(response.body)["errors"]["people_file"] == downloads.TOO_SLOW
    assert downloads.DEADLINE - 0.1 <= took < downloads.DEADLINE + 0.5
    [reader] = readers
    reader.join(timeout=1)
    assert not reader.is_alive()  # the abandoned download stopped reading: nothing reads on
    assert 0 < sent[0] <= downloads.DEADLINE / 0.1 + 2


def test_a_host_that_answers_nothing_is_refused_at_the_deadline(driver, files, monkeypatch):
    """A host that sends no answer at all is given up on at the deadline, not later."""
    monkeypatch.setattr(downloads, "DEADLINE", 0.4)  # shorter than in production, same rule

    def silent(request: httpx.Request) -> httpx.Response:
        time.sleep(downloads.DEADLINE + 1)
        return httpx.Response(200, content=b"a@x.com\n")

    files.transport.handler = silent
    started = time.monotonic()
    response = submit_bulk(driver, {"people_file": files.file("x.csv", "a@x.com\n")})
    assert json.loads(response.body)["errors"]["people_file"] == downloads.TOO_SLOW
    assert time.monotonic() - started < downloads.DEADLINE + 0.5


def test_a_csv_file_with_quoted_names_becomes_a_batch(driver, slack, bot, files):
    """The file goes through the same CSV reading: quoted names arrive whole on the batch."""
    content = 'email,first name,last name\nada@example.com,"Ada; Countess",Lovelace\n'
    content += 'grace@example.com, "Hopper, Grace"\n'
    response = submit_bulk(driver, {"people_file": files.file("people.csv", content)})
    assert response.body == ""
    batch = bot.store.get_batch(approval_request_id(slack))
    assert [(e.email, e.first_name, e.last_name) for e in batch.entries] == [
        ("ada@example.com", "Ada; Countess", "Lovelace"),
        ("grace@example.com", "Hopper, Grace", None),
    ]
    assert "Ada; Countess" in json.dumps(approval_posts(slack)[0].args["blocks"])
