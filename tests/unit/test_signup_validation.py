"""Sign-up data is cleaned and validated before anything is written: an invalid sign-up is
refused with a clear error and writes nothing."""
from __future__ import annotations

import pytest

from services.signup.events import SignUpRequested
from services.signup.registration.commands import InvalidSignUp, clean, sign_up

pytestmark = pytest.mark.unit


def test_cleaning_trims_lower_cases_the_email_and_collapses_the_name():
    data = clean({"email": "  Ada.Lovelace@Example.ORG ", "name": "  Ada    Lovelace ", "locale": " ES "})
    assert (data.email, data.name, data.locale) == ("ada.lovelace@example.org", "Ada Lovelace", "es")


@pytest.mark.parametrize("email", ["ada-at-example.org", "ada@", "@example.org", "ada@example", "a b@example.org",
                                  "ada@@example.org", "", "ada@exa_mple.org"])
def test_an_invalid_email_is_refused_naming_the_field(email):
    with pytest.raises(InvalidSignUp) as refused:
        clean({"email": email, "name": "Ada"})
    assert any(e.startswith("email:") for e in refused.value.errors), refused.value.errors


@pytest.mark.parametrize("data, field", [
    ({"email": "ada@example.org"}, "name"),
    ({"email": "ada@example.org", "name": "   "}, "name"),
    ({"email": "ada@example.org", "name": "Ada", "locale": "fr"}, "locale"),
    ({"email": "ada@example.org", "name": "Ada", "password": "x"}, "password"),   # nothing unexpected comes in
])
def test_other_invalid_fields_are_refused(data, field):
    with pytest.raises(InvalidSignUp) as refused:
        clean(data)
    assert any(e.startswith(f"{field}:") for e in refused.value.errors), refused.value.errors


class _NoDatabase:
    def transaction(self):
        raise AssertionError("an invalid sign-up must not open a transaction")

    def execute(self, *a, **kw):
        raise AssertionError("an invalid sign-up must not write")


def test_an_invalid_sign_up_touches_no_database():
    with pytest.raises(InvalidSignUp, match="not an e-mail address"):
        sign_up(_NoDatabase(), {"email": "nope", "name": "Ada"})  # type: ignore[arg-type]


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def transaction(self):
        import contextlib

        return contextlib.nullcontext()

    def execute(self, sql, params):
        self.rows.append(params)


def test_a_valid_sign_up_is_one_outbox_event_with_a_fresh_id_and_the_cleaned_data():
    import orjson

    conn = _Recorder()
    first = sign_up(conn, {"email": " Ada@Example.org", "name": "Ada"})  # type: ignore[arg-type]
    second = sign_up(conn, {"email": "ada@example.org", "name": "Ada"})  # type: ignore[arg-type]
    assert first != second and len(conn.rows) == 2
    _, aggregatetype, aggregateid, event_type, payload = conn.rows[0]
    assert (aggregatetype, aggregateid, event_type) == ("signup", first, "SignUpRequested")
    event = SignUpRequested.model_validate(orjson.loads(payload))
    assert event.model_dump() == {"signup_id": first, "email": "ada@example.org", "name": "Ada", "locale": "en"}
