"""The sign-up saga's definition: what each command carries, the pivot, and how it ends."""
from __future__ import annotations

import pytest

from services.registry import load
from services.signup.domain import DOMAIN
from services.signup.sign_up import SIGN_UP, SIGN_UP_SAGA
from streams.sagas.machine import SagaStatus
from streams.sagas.testing import SagaScenario

pytestmark = pytest.mark.unit
PAYLOAD = {"signup_id": "s-1", "email": "ada@example.org", "name": "Ada", "locale": "en"}


def test_the_domain_registers_beside_the_shop_without_name_clashes():
    from services.ecommerce.domain import DOMAIN as SHOP

    registry = load(installed={"ecommerce": SHOP, "signup": DOMAIN})
    assert {"registration", "accounts", "mailer"} <= {s.name for s in registry.services}
    assert [c.name for c in registry.components] == ["idp", "smtp"]
    assert registry.service("mailer").private_columns == {"welcome_emails": ("email", "name")}


def test_steps_pivot_and_what_each_command_carries():
    steps = {s.name: s for s in SIGN_UP.steps}
    assert [s.name for s in SIGN_UP.steps] == ["validate_signup", "create_account", "send_welcome"]
    assert steps["validate_signup"].nothing_to_undo and steps["validate_signup"].command is None
    assert steps["send_welcome"].pivot and SIGN_UP.pivot_index == 2
    assert SIGN_UP.payload_for(1, PAYLOAD) == {"signup_id": "s-1", "email": "ada@example.org", "name": "Ada"}
    assert SIGN_UP.payload_for(2, PAYLOAD) == PAYLOAD
    assert SIGN_UP.payload_for(0, PAYLOAD) == {}
    extra = {**PAYLOAD, "ip_address": "192.0.2.1"}
    assert "ip_address" not in SIGN_UP.travelling(extra), "fields no step names stay out of the topics"


def test_handlers_exist_for_every_command_of_every_participant():
    assert set(SIGN_UP_SAGA.handlers["accounts"]) == {"CreateAccount", "DeleteAccount"}
    assert set(SIGN_UP_SAGA.handlers["mailer"]) == {"SendWelcome"}
    assert SIGN_UP_SAGA.business_key(PAYLOAD) == "s-1"


def test_success_creates_the_account_then_sends_the_welcome():
    (SagaScenario(SIGN_UP, payload=PAYLOAD).start().expect_commands("CreateAccount")
     .reply("create_account").expect_commands("SendWelcome")
     .reply("send_welcome").expect_commands().expect_status(SagaStatus.COMPLETED))


def test_a_refused_welcome_deletes_the_account_and_the_sign_up_ends_compensated():
    (SagaScenario(SIGN_UP, payload=PAYLOAD).start().reply("create_account")
     .reply("send_welcome", outcome="failed", reason="550").expect_commands("DeleteAccount")
     .reply("create_account", action="compensation").expect_commands().expect_status(SagaStatus.COMPENSATED))


def test_a_refused_account_compensates_nothing():
    (SagaScenario(SIGN_UP, payload=PAYLOAD).start()
     .reply("create_account", outcome="failed", reason="e-mail already registered")
     .expect_commands().expect_status(SagaStatus.COMPENSATED))


def test_a_provider_that_never_answers_is_retried_once_then_its_account_deleted():
    step = SIGN_UP.steps[1]
    s = SagaScenario(SIGN_UP, payload=PAYLOAD).start()
    s.time_passes(step.timeout_s + 0.1).expect_commands("CreateAccount")      # the resend
    s.time_passes(2 * step.timeout_s + 0.1).expect_commands("DeleteAccount")  # given up: undo a late create
    assert s.state is not None and s.state.reason == "create_account timed out"


def test_the_welcome_is_resent_without_limit_never_compensated():
    s = SagaScenario(SIGN_UP, payload=PAYLOAD).start().reply("create_account")
    for _ in range(6):
        s.time_passes(SIGN_UP.max_timeout_s + 1).expect_commands("SendWelcome")
    assert s.state is not None and s.state.status is SagaStatus.RUNNING
