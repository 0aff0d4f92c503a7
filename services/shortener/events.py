"""The shortener's outbox event, as the EventRouter publishes it on outbox.event.url (key = the url's id)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

URL_AGGREGATE = "url"   # outbox.event.url: UrlCreated


class UrlCreated(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url_id: int = Field(ge=1)
    code: str = Field(min_length=1, max_length=32)
    target: str = Field(min_length=1)
    created_at: datetime
