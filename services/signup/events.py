"""The sign-up saga's start event, as the registration service's outbox publishes it."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

SIGNUP_AGGREGATE = "signup"   # outbox.event.signup: SignUpRequested


class SignUpRequested(BaseModel):
    model_config = ConfigDict(extra="ignore")

    signup_id: str = Field(min_length=1)
    email: str = Field(min_length=3)
    name: str = Field(min_length=1)
    locale: str = "en"
