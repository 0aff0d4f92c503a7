"""The registration service's command: sign up. It only cleans and validates the data; a valid
sign-up is one outbox event (SignUpRequested, a fresh signup_id) and nothing else, so an invalid
one is refused here, synchronously, before anything exists anywhere."""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services import outbox
from services.signup.events import SIGNUP_AGGREGATE, SignUpRequested

# Deliberately plain: one '@', a dotted domain with a letter TLD, no spaces or quoting.
EMAIL = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class InvalidSignUp(ValueError):
    """The sign-up data was refused: `errors` says which field and why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("invalid sign-up: " + "; ".join(errors))
        self.errors = errors


class SignUpData(BaseModel):
    """What a person submits, cleaned: trimmed, the e-mail lower-cased, the name's inner spaces collapsed."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    email: str = Field(max_length=254)
    name: str = Field(min_length=1, max_length=200)
    locale: Literal["en", "es"] = "en"

    @field_validator("email", mode="before")
    @classmethod
    def _email(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        cleaned = value.strip().lower()
        if not EMAIL.match(cleaned):
            raise ValueError(f"{value.strip()!r} is not an e-mail address")
        return cleaned

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        return " ".join(value.split()) if isinstance(value, str) else value

    @field_validator("locale", mode="before")
    @classmethod
    def _locale(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


def clean(data: Mapping[str, Any]) -> SignUpData:
    """Clean and validate; InvalidSignUp with one message per bad field."""
    try:
        return SignUpData.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidSignUp([f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}"
                             for e in exc.errors()]) from None


def sign_up(conn: psycopg.Connection, data: Mapping[str, Any]) -> str:
    """Validate, then write SignUpRequested to the outbox (one transaction); returns the signup_id.
    Raises InvalidSignUp (nothing written) for bad data."""
    valid = clean(data)
    signup_id = str(uuid.uuid4())
    event = SignUpRequested(signup_id=signup_id, **valid.model_dump())
    with conn.transaction():
        outbox.write(conn, SIGNUP_AGGREGATE, signup_id, "SignUpRequested", event.model_dump())
    return signup_id
