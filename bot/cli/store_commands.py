"""The store's commands: `audit`, `migrate`, `export FILE` and `import FILE` (moving a store
between engines). An import file is read and checked whole before the store is opened, so a
file that is missing or not an export leaves no store behind and imports nothing."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.runtime.config import Settings
from bot.ui.mrkdwn import counted

FROM_EXPORT = "give a file written by `invite-bot export`"
# How each kind of item an import reports is counted ("2 records, 1 audit event").
NOUNS = {
    "record": ("record", "records"),
    "archived": ("archived record", "archived records"),
    "meta": ("state value", "state values"),
    "audit": ("audit event", "audit events"),
}


class ExportProblem(Exception):
    """An import file that cannot be read, or is not an export (said in one line)."""


def existing_store(settings: Settings, must_exist: bool = True):  # -> Store | None
    """The configured store (its schema created or upgraded), or None with a line on stderr:
    a store file that is missing (when it `must_exist`), or one that cannot be opened."""
    file_store = not settings.invite_database_url
    if must_exist and file_store and not Path(settings.invite_db_path).exists():
        print(
            f"invite-bot: no store at {settings.invite_db_path} (INVITE_DB_PATH)", file=sys.stderr
        )
        return None
    store, problem = open_configured_store(settings)
    if problem:
        print(f"invite-bot: {problem}", file=sys.stderr)
    return store


def open_configured_store(settings: Settings):  # -> (Store | None, str | None)
    """Open the store, or say in one line why not ("cannot write the store at PATH: ..."),
    with the database password masked."""
    from bot.cli.doctor.store import store_problem
    from bot.store import open_store

    try:
        return open_store(settings), None
    except Exception as exc:
        return None, store_problem(settings, exc)


def print_audit(settings: Settings, since: datetime | None, as_json: bool) -> int:
    from bot.domain.text import log_value

    store = existing_store(settings)
    if store is None:
        return 2
    try:
        for event in store.audit(since):
            if as_json:
                print(event.model_dump_json())
                continue
            # Every stored value is shown by log_value: a reason holding a line break, "x=y"
            # or an escape sequence cannot fake a field or a line, nor reach the terminal.
            detail = " ".join(
                f"{log_value(key)}={log_value(value)}" for key, value in event.detail.items()
            )
            actor = f" by {log_value(event.actor)}" if event.actor else ""
            request = log_value(event.request_id) if event.request_id else "-"
            print(
                f"{event.at:%Y-%m-%d %H:%M:%S}Z  {log_value(event.event):<15} {request}{actor}  {detail}".rstrip()
            )
    finally:
        store.close()
    return 0


def private_text_file(path: str):  # -> TextIO
    """A file for writing that only its owner can read (0600, whatever the umask): an export
    holds invitation and password-reset codes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: tighten it
    return os.fdopen(fd, "w", encoding="utf-8")


def export(settings: Settings, file: str) -> int:
    store = existing_store(settings)
    if store is None:
        return 2
    count = 0
    try:
        try:
            out = sys.stdout if file == "-" else private_text_file(file)
        except OSError as exc:
            print(
                f"invite-bot: cannot write {file}: {exc.strerror}; give a path in an existing folder you may write to",
                file=sys.stderr,
            )
            return 2
        with out if out is not sys.stdout else contextlib.nullcontext(out):
            for item in store.export():
                out.write(json.dumps(item, sort_keys=True) + "\n")
                count += 1
    finally:
        store.close()
    print(
        f"invite-bot: exported {counted(count, 'item')} from the {store.engine} store",
        file=sys.stderr,
    )
    return 0


def migrate(settings: Settings) -> int:
    store = existing_store(settings, must_exist=False)  # creates or upgrades the schema
    if store is None:
        return 2
    try:
        print(f"invite-bot: {store.engine} store at schema version {store.migrate()}")
    finally:
        store.close()
    return 0


def load(settings: Settings, file: str) -> int:
    """`import FILE`: the file checked whole, then its items taken into the store (which is
    created when missing); what the store holds already is kept."""
    try:
        items = read_export(file)
    except ExportProblem as exc:
        print(f"invite-bot: {exc}", file=sys.stderr)
        return 2
    store = existing_store(settings, must_exist=False)  # creates or upgrades the schema
    if store is None:
        return 2
    try:
        counts = store.import_items(items)
    finally:
        store.close()
    kept = counts.pop("kept", 0)
    summary = ", ".join(
        counted(count, *NOUNS.get(kind, (kind, kind))) for kind, count in counts.items()
    )
    print(
        f"invite-bot: imported into the {store.engine} store: {summary}; {kept} kept (already there)"
    )
    return 0


def read_export(file: str) -> list[dict[str, Any]]:
    """The items of an export file ('-': standard input), each checked as the store will read
    it; ExportProblem names the first line that is not one."""
    name = "standard input" if file == "-" else file
    try:
        source = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
        with source if source is not sys.stdin else contextlib.nullcontext(source):
            lines = list(source)
    except FileNotFoundError:
        raise ExportProblem(f"there is no file {file}; {FROM_EXPORT}") from None
    except OSError as exc:
        raise ExportProblem(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ExportProblem(f"{name} is not text, so not an export; {FROM_EXPORT}") from None
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            problem = "not JSON, so this is not an export"
        else:
            problem = item_problem(item)
        if problem:
            raise ExportProblem(f"{name} line {number}: {problem}; {FROM_EXPORT}")
        items.append(item)
    return items


def item_problem(item: Any) -> str | None:
    """Why `item` is not an export item the store can take, or None."""
    from bot.domain.records import AuditEvent
    from bot.store.base import decode

    if not isinstance(item, dict) or item.get("type") not in NOUNS:
        kinds = ", ".join(NOUNS)
        return f"not an export item (a JSON object whose type is one of {kinds})"
    noun = NOUNS[item["type"]][0]
    doc = item.get("doc")
    try:
        if item["type"] in ("record", "archived"):
            if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
                return f"the {noun} has no doc with an id"
            decode(doc["id"], doc)
        elif item["type"] == "audit":
            AuditEvent.model_validate(doc)
        elif not isinstance(item.get("key"), str) or "value" not in item:
            return f"the {noun} has no key or no value"
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "doc"
        return f"the {noun} cannot be read ({where}: {error['msg']})"
    return None
