"""Agents' phone endpoints: what the FastAGI answer dials for a call routed to them. Checked on the way in,
one per agent, and an agent without one is never given a call."""

from __future__ import annotations

import pytest

from router.engine import Router
from router.model import phone_endpoint
from router.rules import RoutingRule
from switchboard.errors import Conflict, Invalid
from tests.router.conftest import Sessions, add_agents, call, chat


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("PJSIP/1001", "PJSIP/1001"),
        ("  SIP/agent-7  ", "SIP/agent-7"),
        ("PJSIP/1001@office", "PJSIP/1001@office"),
        ("Local/1001@from-agents/n", "Local/1001@from-agents/n"),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_an_endpoint_is_technology_slash_resource(given: str | None, kept: str | None) -> None:
    assert phone_endpoint(given) == kept


@pytest.mark.parametrize(
    "given",
    [
        "1001",  # no technology
        "PJSIP/",
        "PJSIP/10 01",
        "PJSIP/1001,30,tT",  # Dial() options smuggled in
        "PJSIP/1001&PJSIP/1002",  # a second target
        '"PJSIP/1001"',
        "PJSIP/${EVIL}",
        "PJSIP/1001\nEXEC System",
        "PJSIP/" + "1" * 100,
        42,
    ],
)
def test_anything_that_would_change_the_dial_string_is_refused(given: object) -> None:
    with pytest.raises(Invalid) as refused:
        phone_endpoint(given)
    assert refused.value.field == "phone_endpoint"


async def test_an_agent_keeps_one_endpoint_of_their_own(router: Router, sessions: Sessions) -> None:
    a, b = await add_agents(router, sessions, 2)
    assert await router.set_endpoint(a, " PJSIP/1001 ") == "PJSIP/1001"
    assert await router.endpoint(a) == "PJSIP/1001"
    assert await router.agent_by_endpoint("PJSIP/1001") == a
    assert await router.agent_by_endpoint("PJSIP/1002") is None and await router.agent_by_endpoint("") is None
    assert await router.set_endpoint(a, "PJSIP/1001") == "PJSIP/1001"  # saving it again is fine
    with pytest.raises(Conflict):
        await router.set_endpoint(b, "PJSIP/1001")
    views = {v.agent_id: v for v in await router.agents()}
    assert (views[a].phone_endpoint, views[b].phone_endpoint) == ("PJSIP/1001", None)
    assert await router.set_endpoint(a, "") is None
    assert await router.set_endpoint(b, "PJSIP/1001") == "PJSIP/1001"  # free again


async def test_an_agent_without_an_endpoint_takes_chats_but_never_calls(
    router: Router, sessions: Sessions
) -> None:
    (chat_only,) = await add_agents(router, sessions, 1)
    assert (await router.dry_run(call("c0"))).agent_id is None
    assert (await router.assign(call("c1"))).reason == "queued"
    assert (await router.assign(chat(1))).agent_id == chat_only
    (phone,) = await add_agents(router, sessions, 1, phones=True)  # pulls the queued call at once
    views = {v.agent_id: v for v in await router.agents()}
    assert views[phone].on_call and not views[chat_only].on_call


async def test_a_sticky_expert_without_an_endpoint_does_not_hold_a_call(
    router: Router, sessions: Sessions
) -> None:
    await router.save_rule(RoutingRule(sticky_wait_seconds=60))
    expert, other = await add_agents(router, sessions, 2)
    await router.set_endpoint(other, "PJSIP/1002")
    decision = await router.assign(call("c1", owner_id=expert))
    assert (decision.agent_id, decision.reason) == (other, "least_busy")
