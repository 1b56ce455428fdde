"""What the Slack listeners need, handed to each `register(app, deps)`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.bulk import BatchService
from bot.catalog import Catalog
from bot.config import Settings
from bot.service import InviteService

if TYPE_CHECKING:
    from handlers.notify import Courier


@dataclass(frozen=True)
class Deps:
    settings: Settings
    service: InviteService
    catalog: Catalog
    courier: Courier
    batches: BatchService
