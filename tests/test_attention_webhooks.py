"""Partner webhooks of the attention feed (issue 16 item 3): the subscriptions'
mutations and list, every bad input and every role that may not (nothing
changed), and deliveries to a real local HTTP receiver: signed, with the event
id as Idempotency-Key, retried with doubling delays (time driven by `now`),
in order per customer, a subscription disabled after failures in a row, two
senders at once sending each delivery once, and a private address refused at
send time."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.config import Settings
from app.domain.attention import NewEvent, write_events
from app.domain.attention_webhooks import (
    RETRY_BASE_SECONDS,
    SendConfig,
    send_due_deliveries,
)
from app.domain.ids import decode_id_of
from app.domain.ids import encode_global_id as gid
from app.models.admins import ExternalAdminGrant
from app.models.attention import AttentionDelivery, AttentionWebhook
from app.models.audit import AuditEvent
from app.models.customers import Customer
from app.models.enums import AdminRole, AttentionDeliveryStatus, AttentionEventType, CustomerStatus
from app.models.organization import PartnerOrganization
from tests import factories
from tests.factories import ADMIN, FULL, READ_ONLY, SALES, SALES_FULL
from tests.graphql_client import data, gql
from tests.test_mutation_matrix import everything
from workers.attention_webhooks import attention_webhook_tick, send_config

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
README_TEXT = (Path(__file__).resolve().parent.parent / "README.md").read_text()
GAINED, LOST, TRIAL_ENDING, LOW = (
    AttentionEventType.STATUS_GAINED,
    AttentionEventType.STATUS_LOST,
    AttentionEventType.TRIAL_ENDING,
    AttentionEventType.LOW_LICENSE_ASSIGNMENT,
)

FIELDS = """id url topics enabled disabledAt disabledReason consecutiveFailures
            createdAt updatedAt signingSecret createdBy { email }"""
CREATE = f"""mutation($input: CreateWebhookSubscriptionInput!) {{
  createWebhookSubscription(input: $input) {{
    subscription {{ {FIELDS} }} userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateWebhookSubscriptionInput!) {{
  updateWebhookSubscription(input: $input) {{
    subscription {{ {FIELDS} }} userErrors {{ field message code }} }} }}"""
DELETE = """mutation($id: ID!) {
  deleteWebhookSubscription(input: {id: $id}) { deletedId userErrors { field message code } } }"""
LIST = f"""query($first: Int, $after: String) {{
  webhookSubscriptions(first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {FIELDS} }} }} }}"""
DELIVERIES = """query($status: WebhookDeliveryStatus, $first: Int, $after: String) {
  webhookSubscriptions { nodes { id consecutiveFailures enabled disabledAt disabledReason
    deliveries(status: $status, first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      nodes { id eventId status attempts lastStatusCode lastError nextAttemptAt
              deliveredAt createdAt } } } } }"""
NODE = "query($id: ID!) { node(id: $id) { id ... on WebhookSubscription { url } } }"


@pytest.fixture
def http_settings(db: Settings, redis_url: str) -> Settings:
    """The receivers of these tests listen on 127.0.0.1: the webhook host setting
    allows it (and only it)."""
    return db.model_copy(
        update={
            "redis_url": redis_url,
            "webhook_allow_hosts": "127.0.0.1",
            "attention_webhooks_per_partner": 3,
        }
    )


def expected_secret(settings: Settings, subscription_id: str) -> str:
    """The signing secret, computed here from the service key and the documented label."""
    pk = decode_id_of(subscription_id, "WebhookSubscription")
    mac = hmac.new(
        settings.signing_key().encode(), f"attention-webhook:{pk}".encode(), hashlib.sha256
    )
    return "whsec_" + mac.hexdigest()


def config(settings: Settings, **changes: Any) -> SendConfig:
    terms = {
        "key": settings.signing_key(),
        "allowed_hosts": frozenset({"127.0.0.1"}),
        "max_attempts": 6,
        "failures_to_disable": 5,
    } | changes
    return SendConfig(**terms)


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each POST (in arrival order)
    and answers with `answer(body)`'s status, after `delay` seconds."""

    def __init__(
        self, answer: Callable[[dict], int] = lambda body: 204, delay: float = 0.0
    ) -> None:
        self.answer = answer
        self.delay = delay
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers), body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.answer(orjson.loads(body)))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/attention"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def bodies(self) -> list[dict]:
        return [orjson.loads(body) for _, body in self.requests]

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _world() -> tuple[
    PartnerOrganization, dict, PartnerOrganization, factories.AdminWithToken
]:
    org = await factories.partner("Northwind Partners", "northwind.example")
    team = await factories.team(org)
    other = await factories.partner("Contoso Partners", "contoso.example")
    return org, team, other, await factories.admin(other, FULL)


async def _create(client: httpx.AsyncClient, token: str, url: str, topics: list[str]) -> dict:
    answer = await data(client, token, CREATE, {"input": {"url": url, "topics": topics}})
    payload = answer["createWebhookSubscription"]
    assert payload["userErrors"] == [], payload
    return payload["subscription"]


def _event(
    customer: Customer,
    type_: AttentionEventType,
    at: datetime,
    status: CustomerStatus | None = None,
    detail: dict | None = None,
) -> NewEvent:
    return NewEvent(
        partner_id=customer.partner_id,  # type: ignore[attr-defined]
        customer_id=customer.id,
        type=type_,
        occurred_at=at,
        status=status,
        detail=detail or {},
    )


def _signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    timestamp = headers["X-PartnerHub-Timestamp"]
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-PartnerHub-Signature"], f"sha256={mac}")


# ------------------------------------------------------------------ mutations and list


async def test_a_full_admin_creates_lists_changes_and_deletes_subscriptions(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    org, team, _, _ = await _world()
    full = team[FULL]
    first = await _create(client, full.token, "http://127.0.0.1:9/a", ["TRIAL_ENDING"])
    second = await _create(
        client, full.token, "http://127.0.0.1:9/b", ["STATUS_LOST", "STATUS_GAINED", "STATUS_LOST"]
    )
    # Topics without repeats, in the enum's order; a new subscription is enabled.
    assert second["topics"] == ["STATUS_GAINED", "STATUS_LOST"]
    assert second["enabled"] is True and second["consecutiveFailures"] == 0
    assert second["disabledAt"] is None and second["createdBy"] == {"email": full.admin.email}
    assert first["signingSecret"] == expected_secret(http_settings, first["id"])
    assert first["signingSecret"] != second["signingSecret"]

    # Newest first, paged by cursor.
    page = (await data(client, full.token, LIST, {"first": 1}))["webhookSubscriptions"]
    assert page["totalCount"] == 2 and page["pageInfo"]["hasNextPage"] is True
    assert [n["id"] for n in page["nodes"]] == [second["id"]]
    after = page["pageInfo"]["endCursor"]
    rest = (await data(client, full.token, LIST, {"first": 1, "after": after}))[
        "webhookSubscriptions"
    ]
    assert [n["id"] for n in rest["nodes"]] == [first["id"]]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert (await data(client, full.token, NODE, {"id": first["id"]}))["node"]["url"].endswith("/a")

    changed = (
        await data(
            client,
            full.token,
            UPDATE,
            {
                "input": {
                    "id": first["id"],
                    "url": "http://127.0.0.1:9/c",
                    "topics": ["LOW_LICENSE_ASSIGNMENT"],
                }
            },
        )
    )["updateWebhookSubscription"]
    assert changed["userErrors"] == []
    assert changed["subscription"]["url"] == "http://127.0.0.1:9/c"
    assert changed["subscription"]["topics"] == ["LOW_LICENSE_ASSIGNMENT"]

    off = (
        await data(client, full.token, UPDATE, {"input": {"id": first["id"], "enabled": False}})
    )["updateWebhookSubscription"]["subscription"]
    assert off["enabled"] is False and off["disabledAt"] is not None
    assert full.admin.email in off["disabledReason"]
    # The same values again change nothing and write no audit event.
    events_before = await AuditEvent.all().count()
    same = await data(
        client,
        full.token,
        UPDATE,
        {"input": {"id": first["id"], "enabled": False, "url": "http://127.0.0.1:9/c"}},
    )
    assert same["updateWebhookSubscription"]["userErrors"] == []
    assert await AuditEvent.all().count() == events_before

    deleted = (await data(client, full.token, DELETE, {"id": second["id"]}))[
        "deleteWebhookSubscription"
    ]
    assert deleted == {"deletedId": second["id"], "userErrors": []}
    left = (await data(client, full.token, LIST))["webhookSubscriptions"]
    assert [n["id"] for n in left["nodes"]] == [first["id"]]
    actions = [e.action for e in await AuditEvent.filter(partner_id=org.id).order_by("id")]
    assert actions == [
        "webhook_subscription.create",
        "webhook_subscription.create",
        "webhook_subscription.update",
        "webhook_subscription.update",
        "webhook_subscription.delete",
    ]
    assert all(e.actor_id == full.admin.id for e in await AuditEvent.filter(partner_id=org.id))


BAD_CREATES: list[tuple[str, dict, list[str] | None, str, str]] = [
    # (label, input, field, code, words of the message)
    ("no topics", {"topics": []}, ["input", "topics"], "INVALID", "at least one topic"),
    ("empty URL", {"url": "  "}, ["input", "url"], "INVALID", "is required"),
    ("not a URL", {"url": "http://exa mple.com/"}, ["input", "url"], "INVALID", "webhook URL"),
    ("ftp", {"url": "ftp://127.0.0.1/x"}, ["input", "url"], "INVALID", "https://"),
    (
        "plain http",
        {"url": "http://93.184.216.34/x"},
        ["input", "url"],
        "INVALID",
        "must use https",
    ),
    ("loopback", {"url": "https://127.0.0.2/x"}, ["input", "url"], "INVALID", "loopback"),
    ("private", {"url": "https://10.1.2.3/x"}, ["input", "url"], "INVALID", "private address"),
    ("metadata", {"url": "https://169.254.169.254/x"}, ["input", "url"], "INVALID", "link-local"),
    ("mapped", {"url": "https://[::ffff:192.168.0.1]/x"}, ["input", "url"], "INVALID", "private"),
    (
        "internal name",
        {"url": "https://db.internal/x"},
        ["input", "url"],
        "INVALID",
        "internal host",
    ),
    ("localhost", {"url": "https://localhost/x"}, ["input", "url"], "INVALID", "internal host"),
    ("credentials", {"url": "https://u:p@127.0.0.1/x"}, ["input", "url"], "INVALID", "password"),
    ("port", {"url": "https://127.0.0.1:70000/x"}, ["input", "url"], "INVALID", "URL"),
    ("too long", {"url": "http://127.0.0.1/" + "a" * 2000}, ["input", "url"], "INVALID", "longer"),
]


@pytest.mark.parametrize(
    ("label", "change", "field", "code", "words"), BAD_CREATES, ids=[c[0] for c in BAD_CREATES]
)
async def test_bad_input_to_create_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
    label: str,
    change: dict,
    field: list[str] | None,
    code: str,
    words: str,
) -> None:
    _, team, _, _ = await _world()
    before = await everything()
    given = {"url": "http://127.0.0.1:9/ok", "topics": ["TRIAL_ENDING"]} | change
    payload = (await data(client, team[FULL].token, CREATE, {"input": given}))[
        "createWebhookSubscription"
    ]
    assert payload["subscription"] is None
    [error] = payload["userErrors"]
    assert (error["field"], error["code"]) == (field, code), error
    assert words in error["message"], error
    assert await everything() == before


async def test_unknown_topics_and_malformed_cursors_are_graphql_errors(
    client: httpx.AsyncClient,
) -> None:
    _, team, _, _ = await _world()
    before = await everything()
    answer = (
        await gql(
            client,
            team[FULL].token,
            CREATE,
            {"input": {"url": "http://127.0.0.1:9/x", "topics": ["TRIAL_ENDING", "NOT_A_TOPIC"]}},
        )
    ).json()
    assert answer.get("data") is None
    assert "NOT_A_TOPIC" in answer["errors"][0]["message"]
    bad = (await gql(client, team[FULL].token, LIST, {"after": "bm90LWEtY3Vyc29y"})).json()
    assert "`after` is not a cursor of this list" in bad["errors"][0]["message"]
    wrong = (await gql(client, team[FULL].token, LIST, {"first": 0})).json()
    assert "`first` must be between 1 and 100" in wrong["errors"][0]["message"]
    assert await everything() == before


async def test_more_than_the_setting_per_partner_is_refused(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    _, team, _, other_full = await _world()
    limit = http_settings.attention_webhooks_per_partner
    for n in range(limit):
        await _create(client, team[FULL].token, f"http://127.0.0.1:9/{n}", ["TRIAL_ENDING"])
    # Another partner's subscriptions count for it alone.
    await _create(client, other_full.token, "http://127.0.0.1:9/other", ["TRIAL_ENDING"])
    before = await everything()
    payload = (
        await data(
            client,
            team[FULL].token,
            CREATE,
            {"input": {"url": "http://127.0.0.1:9/over", "topics": ["TRIAL_ENDING"]}},
        )
    )["createWebhookSubscription"]
    [error] = payload["userErrors"]
    assert error["code"] == "LIMIT_EXCEEDED" and f"at most {limit}" in error["message"]
    assert await everything() == before


async def test_update_and_delete_refuse_bad_ids_and_bad_values(
    client: httpx.AsyncClient,
) -> None:
    _, team, _, other_full = await _world()
    token = team[FULL].token
    mine = await _create(client, token, "http://127.0.0.1:9/mine", ["TRIAL_ENDING"])
    theirs = await _create(client, other_full.token, "http://127.0.0.1:9/t", ["TRIAL_ENDING"])
    before = await everything()
    malformed = [
        "not-an-id",
        "",
        gid("Customer", 1),
        gid("WebhookSubscription", 10**6),
        mine["id"] + "=",
        theirs["id"],  # another partner's: not found, as if it did not exist
    ]
    for bad_id in malformed:
        updated = (await data(client, token, UPDATE, {"input": {"id": bad_id, "enabled": False}}))[
            "updateWebhookSubscription"
        ]
        assert [(e["field"], e["code"]) for e in updated["userErrors"]] == [
            (["input", "id"], "NOT_FOUND")
        ], bad_id
        deleted = (await data(client, token, DELETE, {"id": bad_id}))["deleteWebhookSubscription"]
        assert deleted["deletedId"] is None
        assert [(e["field"], e["code"]) for e in deleted["userErrors"]] == [
            (["input", "id"], "NOT_FOUND")
        ], bad_id
        assert (await data(client, token, NODE, {"id": bad_id}))["node"] is None
    for change, field in [
        ({"topics": []}, ["input", "topics"]),
        ({"url": ""}, ["input", "url"]),
        ({"url": "https://192.168.1.1/x"}, ["input", "url"]),
        ({"url": "gopher://127.0.0.1/"}, ["input", "url"]),
    ]:
        updated = (await data(client, token, UPDATE, {"input": {"id": mine["id"], **change}}))[
            "updateWebhookSubscription"
        ]
        assert [(e["field"], e["code"]) for e in updated["userErrors"]] == [(field, "INVALID")]
    assert await everything() == before


@pytest.mark.parametrize("role", [ADMIN, READ_ONLY, SALES_FULL, SALES])
async def test_every_other_role_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, role: AdminRole
) -> None:
    org, team, _, _ = await _world()
    hook = await _create(client, team[FULL].token, "http://127.0.0.1:9/x", ["TRIAL_ENDING"])
    # An external-admin grant does not reach another partner's webhooks either.
    customer = await factories.customer(org)
    await factories.assign(team[role].admin, customer)
    token = team[role].token
    before = await everything()
    listed = (await gql(client, token, LIST)).json()
    assert listed.get("data") is None
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert f"FULL_ADMIN only (you are {role.value})" in listed["errors"][0]["message"]
    assert (await data(client, token, NODE, {"id": hook["id"]}))["node"] is None
    answers = [
        (
            await data(
                client,
                token,
                CREATE,
                {"input": {"url": "http://127.0.0.1:9/y", "topics": ["TRIAL_ENDING"]}},
            )
        )["createWebhookSubscription"],
        (await data(client, token, UPDATE, {"input": {"id": hook["id"], "enabled": False}}))[
            "updateWebhookSubscription"
        ],
        (await data(client, token, DELETE, {"id": hook["id"]}))["deleteWebhookSubscription"],
    ]
    for payload, act in zip(answers, ["Creating", "Changing", "Deleting"], strict=True):
        [error] = payload["userErrors"]
        assert error["code"] == "FORBIDDEN"
        assert error["message"] == (
            f"{act} webhook subscriptions needs the FULL_ADMIN role (you are {role.value})"
        )
    assert await everything() == before


async def test_another_partner_sees_and_reaches_none_of_them(client: httpx.AsyncClient) -> None:
    org, team, _, other_full = await _world()
    await _create(client, team[FULL].token, "http://127.0.0.1:9/x", ["TRIAL_ENDING"])
    listed = (await data(client, other_full.token, LIST))["webhookSubscriptions"]
    assert listed["totalCount"] == 0 and listed["nodes"] == []
    # An admin of the other partner made external admin of one of our customers
    # still sees none of our subscriptions.
    customer = await factories.customer(org)
    await ExternalAdminGrant.create(
        admin=other_full.admin, customer=customer, granted_by=team[FULL].admin, granted_at=T0
    )
    listed = (await data(client, other_full.token, LIST))["webhookSubscriptions"]
    assert listed["totalCount"] == 0


# ------------------------------------------------------------------ deliveries


async def test_events_arrive_signed_with_their_id_as_idempotency_key(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    org, team, other, other_full = await _world()
    token = team[FULL].token
    acme = await factories.customer(org, "Acme")
    globex = await factories.customer(org, "Globex")
    foreign = await factories.customer(other, "Initech")
    with Receiver() as receiver:
        hook = await _create(client, token, receiver.url, ["STATUS_GAINED", "TRIAL_ENDING"])
        # The other partner subscribes to everything at the same receiver.
        await _create(
            client, other_full.token, receiver.url + "/contoso", ["LOW_LICENSE_ASSIGNMENT"]
        )
        written = await write_events(
            [
                _event(acme, GAINED, T0, CustomerStatus.EXPIRING_SOON, {"status": "EXPIRING_SOON"}),
                _event(
                    acme,
                    TRIAL_ENDING,
                    T0,
                    detail={"trialId": 12, "endDate": "2026-12-01", "daysLeft": 10},
                ),
                _event(globex, LOW, T0, detail={"family": "CALLING"}),  # not a topic of ours
                _event(
                    globex,
                    GAINED,
                    T0,
                    CustomerStatus.LICENSE_OVERAGE,
                    {"status": "LICENSE_OVERAGE"},
                ),
                _event(foreign, GAINED, T0, CustomerStatus.EXPIRED, {"status": "EXPIRED"}),
            ]
        )
        summary = await send_due_deliveries(config(http_settings), T0)
    assert summary.delivered == 3 and summary.failed == 0 and summary.retrying == 0
    ids = [w.id for w in written]
    expected = {
        gid("AttentionEvent", ids[0]): {
            "id": gid("AttentionEvent", ids[0]),
            "topic": "STATUS_GAINED",
            "occurredAt": T0.isoformat(),
            "customer": {"id": gid("Customer", acme.id), "name": "Acme", "orgId": str(acme.org_id)},
            "status": "EXPIRING_SOON",
            "detail": {"status": "EXPIRING_SOON"},
        },
        gid("AttentionEvent", ids[1]): {
            "id": gid("AttentionEvent", ids[1]),
            "topic": "TRIAL_ENDING",
            "occurredAt": T0.isoformat(),
            "customer": {"id": gid("Customer", acme.id), "name": "Acme", "orgId": str(acme.org_id)},
            "status": None,
            "detail": {"trialId": gid("Trial", 12), "endDate": "2026-12-01", "daysLeft": 10},
        },
        gid("AttentionEvent", ids[3]): {
            "id": gid("AttentionEvent", ids[3]),
            "topic": "STATUS_GAINED",
            "occurredAt": T0.isoformat(),
            "customer": {
                "id": gid("Customer", globex.id),
                "name": "Globex",
                "orgId": str(globex.org_id),
            },
            "status": "LICENSE_OVERAGE",
            "detail": {"status": "LICENSE_OVERAGE"},
        },
    }
    assert len(receiver.requests) == 3  # nothing of the other partner, no other topic
    for headers, body in receiver.requests:
        event = orjson.loads(body)
        assert expected[event["id"]] == event
        assert headers["Idempotency-Key"] == event["id"]
        assert headers["X-PartnerHub-Topic"] == event["topic"]
        assert headers["Content-Type"] == "application/json"
        assert abs(int(headers["X-PartnerHub-Timestamp"]) - time.time()) < 60
        assert _signed(hook["signingSecret"], headers, body)
        assert not _signed(hook["signingSecret"] + "x", headers, body)
    # Acme's two events in the order they were written.
    acme_order = [b["id"] for b in receiver.bodies() if b["customer"]["name"] == "Acme"]
    assert acme_order == [gid("AttentionEvent", ids[0]), gid("AttentionEvent", ids[1])]

    # The deliveries, with their outcome, through the API; nothing left to send.
    seen = (await data(client, token, DELIVERIES))["webhookSubscriptions"]["nodes"][0]
    deliveries = seen["deliveries"]["nodes"]
    assert [d["eventId"] for d in deliveries] == [
        gid("AttentionEvent", i) for i in (ids[3], ids[1], ids[0])
    ]  # newest first
    assert all(
        d["status"] == "DELIVERED"
        and d["attempts"] == 1
        and d["lastStatusCode"] == 204
        and d["lastError"] is None
        and d["nextAttemptAt"] is None
        and d["deliveredAt"] is not None
        for d in deliveries
    )
    none_pending = await data(client, token, DELIVERIES, {"status": "PENDING"})
    assert none_pending["webhookSubscriptions"]["nodes"][0]["deliveries"]["totalCount"] == 0
    with Receiver() as again:
        assert (
            await send_due_deliveries(config(http_settings), T0 + timedelta(hours=1))
        ).delivered == 0
    assert again.requests == []


async def test_a_failing_receiver_is_retried_with_doubling_delays_then_failed_in_order(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    """Acme's receiver answers 500: its first event is tried at T0, +10 s, +30 s,
    +70 s (4 tries), then FAILED; its second waits all along, then goes; Globex's
    events are not held up by Acme's."""
    org, team, _, _ = await _world()
    acme = await factories.customer(org, "Acme")
    globex = await factories.customer(org, "Globex")
    terms = config(http_settings, max_attempts=4)
    with Receiver(lambda body: 500 if body["customer"]["name"] == "Acme" else 200) as receiver:
        hook = await _create(
            client, team[FULL].token, receiver.url, ["STATUS_GAINED", "STATUS_LOST"]
        )
        first, second, third = await write_events(
            [
                _event(acme, GAINED, T0, CustomerStatus.SUSPENDED),
                _event(acme, LOST, T0, CustomerStatus.SUSPENDED),
                _event(globex, GAINED, T0, CustomerStatus.TRIAL),
            ]
        )
        # The try times, computed here: each delay twice the one before.
        tries = [T0]
        for n in range(1, terms.max_attempts):
            tries.append(tries[-1] + timedelta(seconds=RETRY_BASE_SECONDS * 2 ** (n - 1)))
        assert [t - T0 for t in tries] == [timedelta(seconds=s) for s in (0, 10, 30, 70)]
        acme_tries: list[int] = []
        for n, moment in enumerate(tries):
            # Just before the try is due: nothing is sent.
            if n:
                count = len(receiver.requests)
                await send_due_deliveries(terms, moment - timedelta(seconds=1))
                assert len(receiver.requests) == count
            await send_due_deliveries(terms, moment)
            acme_tries.append(
                sum(1 for b in receiver.bodies() if b["id"] == gid("AttentionEvent", first.id))
            )
            delivery = await AttentionDelivery.get(event_id=first.id)
            assert delivery.attempts == n + 1
            assert delivery.last_status_code == 500 and delivery.last_error == "HTTP 500"
            if n + 1 < terms.max_attempts:
                assert delivery.status == AttentionDeliveryStatus.PENDING
                assert delivery.next_attempt_at == tries[n + 1]
                # Acme's second event waits for its first.
                assert gid("AttentionEvent", second.id) not in [b["id"] for b in receiver.bodies()]
        assert acme_tries == [1, 2, 3, 4]
    assert delivery.status == AttentionDeliveryStatus.FAILED
    bodies = [b["id"] for b in receiver.bodies()]
    # Globex's event went at once, with Acme's first try.
    assert bodies[:2] and gid("AttentionEvent", third.id) in bodies[:2]
    # Acme's second event went right after its first FAILED, and failed its first try.
    assert bodies[-1] == gid("AttentionEvent", second.id)
    later = await AttentionDelivery.get(event_id=second.id)
    assert later.status == AttentionDeliveryStatus.PENDING and later.attempts == 1
    webhook = await AttentionWebhook.get()
    assert webhook.consecutive_failures == 1 and webhook.enabled

    seen = await data(client, team[FULL].token, DELIVERIES, {"status": "FAILED"})
    node = seen["webhookSubscriptions"]["nodes"][0]
    assert node["id"] == hook["id"] and node["consecutiveFailures"] == 1
    [failed] = node["deliveries"]["nodes"]
    assert failed["eventId"] == gid("AttentionEvent", first.id)
    assert (failed["status"], failed["attempts"], failed["lastStatusCode"]) == ("FAILED", 4, 500)
    assert failed["nextAttemptAt"] is None and failed["deliveredAt"] is None


async def test_a_delivered_one_resets_the_count_of_failures(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    org, team, _, _ = await _world()
    acme = await factories.customer(org, "Acme")
    answers = iter([500, 204])
    terms = config(http_settings, max_attempts=1)
    with Receiver(lambda body: next(answers)) as receiver:
        await _create(client, team[FULL].token, receiver.url, ["STATUS_GAINED"])
        await write_events([_event(acme, GAINED, T0, CustomerStatus.TRIAL)])
        await send_due_deliveries(terms, T0)
        assert (await AttentionWebhook.get()).consecutive_failures == 1
        await write_events([_event(acme, GAINED, T0, CustomerStatus.ACTIVE)])
        await send_due_deliveries(terms, T0 + timedelta(seconds=1))
    assert len(receiver.requests) == 2
    assert (await AttentionWebhook.get()).consecutive_failures == 0


async def test_failures_in_a_row_disable_the_subscription_until_re_enabled(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    org, team, _, _ = await _world()
    token = team[FULL].token
    acme = await factories.customer(org, "Acme")
    down = True
    terms = config(http_settings, max_attempts=2, failures_to_disable=3)
    with Receiver(lambda body: 503 if down else 200) as receiver:
        hook = await _create(client, token, receiver.url, ["STATUS_GAINED"])
        written = await write_events(
            [
                _event(acme, GAINED, T0 + timedelta(seconds=n), CustomerStatus.TRIAL)
                for n in range(5)
            ]
        )
        moment = T0 + timedelta(seconds=10)
        for _ in range(10):  # each try due in turn (retries 10 s apart)
            await send_due_deliveries(terms, moment)
            moment += timedelta(seconds=RETRY_BASE_SECONDS)
        # Three deliveries FAILED (2 tries each), in order: 6 requests, then disabled.
        assert [b["id"] for b in receiver.bodies()] == [
            gid("AttentionEvent", w.id) for w in written[:3] for _ in range(2)
        ]
        statuses = [(await AttentionDelivery.get(event_id=w.id)).status for w in written]
        assert statuses == [AttentionDeliveryStatus.FAILED] * 5
        last = await AttentionDelivery.get(event_id=written[4].id)
        assert last.attempts == 0 and last.last_error == "The subscription was disabled."

        [audit] = await AuditEvent.filter(action="webhook_subscription.disable")
        assert audit.partner_id == org.id and audit.actor_id is None
        assert audit.target_id == f"WebhookSubscription:{(await AttentionWebhook.get()).id}"
        shown = (await data(client, token, LIST))["webhookSubscriptions"]["nodes"][0]
        assert shown["enabled"] is False and shown["consecutiveFailures"] == 3
        assert shown["disabledAt"] is not None
        assert "3 deliveries in a row failed" in shown["disabledReason"]
        assert "HTTP 503" in shown["disabledReason"]
        audit_log = await data(
            client, token, "{ auditLog(first: 1) { nodes { action targetId actor { id } } } }"
        )
        assert audit_log["auditLog"]["nodes"][0] == {
            "action": "webhook_subscription.disable",
            "targetId": hook["id"],
            "actor": None,
        }

        # Disabled: a new event gets no delivery, nothing is sent.
        count = len(receiver.requests)
        await write_events([_event(acme, LOST, moment, CustomerStatus.TRIAL)])
        await write_events([_event(acme, GAINED, moment, CustomerStatus.ACTIVE)])
        assert await AttentionDelivery.all().count() == 5
        await send_due_deliveries(terms, moment + timedelta(minutes=5))
        assert len(receiver.requests) == count

        # Re-enabled: the count starts again and new events go out.
        down = False
        again = (await data(client, token, UPDATE, {"input": {"id": hook["id"], "enabled": True}}))[
            "updateWebhookSubscription"
        ]["subscription"]
        assert again["enabled"] is True and again["consecutiveFailures"] == 0
        assert again["disabledAt"] is None and again["disabledReason"] is None
        [newest] = await write_events([_event(acme, GAINED, moment, CustomerStatus.EXPIRED)])
        assert (await send_due_deliveries(terms, moment + timedelta(minutes=6))).delivered == 1
        assert receiver.bodies()[-1]["id"] == gid("AttentionEvent", newest.id)


async def test_two_senders_at_once_send_each_delivery_once_in_order(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    org, team, _, _ = await _world()
    customers = [await factories.customer(org, f"Customer {n}") for n in range(4)]
    terms = config(http_settings)
    with Receiver(delay=0.05) as receiver:
        await _create(client, team[FULL].token, receiver.url, ["STATUS_GAINED"])
        written = await write_events(
            [
                _event(c, GAINED, T0 + timedelta(seconds=n), CustomerStatus.TRIAL)
                for n in range(5)
                for c in customers
            ]
        )
        moment = T0 + timedelta(minutes=1)
        for _ in range(6):
            await asyncio.gather(
                send_due_deliveries(terms, moment), send_due_deliveries(terms, moment)
            )
            if len(receiver.requests) == len(written):
                break
    keys = [h["Idempotency-Key"] for h, _ in receiver.requests]
    assert sorted(keys) == sorted(gid("AttentionEvent", w.id) for w in written)  # once each
    for c in customers:
        got = [b["id"] for b in receiver.bodies() if b["customer"]["id"] == gid("Customer", c.id)]
        wanted = [gid("AttentionEvent", w.id) for w in written if w.event.customer_id == c.id]
        assert got == wanted
    assert all(d.attempts == 1 for d in await AttentionDelivery.all())


async def test_an_address_that_is_private_at_send_time_is_refused(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    """Each try checks the stored URL again, resolving its host: a name that now
    resolves to a loopback address (2130706433 is 127.0.0.1 to the resolver; the
    allow-list names 127.0.0.1 as written) and a private address are refused, and
    nothing is POSTed to them, while the allowed receiver gets its event."""
    org, team, _, _ = await _world()
    acme = await factories.customer(org, "Acme")
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        for n in range(3):
            await _create(client, team[FULL].token, f"{receiver.url}/{n}", ["STATUS_GAINED"])
        allowed, renamed, private = await AttentionWebhook.all().order_by("id")
        await AttentionWebhook.filter(id=renamed.id).update(
            url=f"https://2130706433:{port}/hooks/attention"
        )
        await AttentionWebhook.filter(id=private.id).update(url="https://10.1.2.3/hook")
        await write_events([_event(acme, GAINED, T0, CustomerStatus.TRIAL)])
        summary = await send_due_deliveries(config(http_settings), T0)
    assert (summary.delivered, summary.retrying) == (1, 2)
    # Only the allowed receiver's path was reached.
    assert [h["Host"] for h, _ in receiver.requests] == [f"127.0.0.1:{port}"]
    by_hook = {d.webhook_id: d for d in await AttentionDelivery.all()}  # type: ignore[attr-defined]
    assert by_hook[allowed.id].status == AttentionDeliveryStatus.DELIVERED
    assert by_hook[renamed.id].last_error == (
        "Refused: the webhook URL resolves to a loopback address (127.0.0.1)."
    )
    assert by_hook[private.id].last_error == (
        "Refused: the webhook URL points to a private address (10.1.2.3)."
    )
    for refused in (by_hook[renamed.id], by_hook[private.id]):
        assert refused.status == AttentionDeliveryStatus.PENDING
        assert refused.attempts == 1 and refused.last_status_code is None
        assert refused.next_attempt_at == T0 + timedelta(seconds=RETRY_BASE_SECONDS)


async def test_the_workers_tick_sends_with_the_settings(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    from workers.settings import CRON_JOBS

    assert any(job.name.endswith("attention_webhook_tick") for job in CRON_JOBS)
    org, team, _, _ = await _world()
    acme = await factories.customer(org, "Acme")
    with Receiver() as receiver:
        hook = await _create(client, team[FULL].token, receiver.url, ["TRIAL_ENDING"])
        [event] = await write_events([_event(acme, TRIAL_ENDING, T0, detail={"daysLeft": 3})])
        tried = await attention_webhook_tick({"settings": http_settings}, T0.isoformat())
    assert tried == 1
    [(headers, body)] = receiver.requests
    assert headers["Idempotency-Key"] == gid("AttentionEvent", event.id)
    assert _signed(hook["signingSecret"], headers, body)
    assert send_config(http_settings).max_attempts == http_settings.attention_webhook_max_attempts


def test_the_signing_secret_is_not_a_report_schedules() -> None:
    from app.domain.attention_webhooks import subscription_secret
    from app.domain.webhooks import schedule_secret

    key = uuid.uuid4().hex * 2
    assert subscription_secret(key, 1) != schedule_secret(key, 1)
    assert subscription_secret(key, 1) != subscription_secret(key, 2)


async def test_the_readme_signature_check_accepts_a_real_delivery_only(
    client: httpx.AsyncClient, http_settings: Settings
) -> None:
    """The receiver's check the README shows (run as written) on a delivery made
    here: it accepts it, and refuses another key, another body and an old one."""
    section = README_TEXT.split("### Partner webhooks", 1)[1].split("\n## ", 1)[0]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    verify = namespace["verify"]
    org, team, _, _ = await _world()
    acme = await factories.customer(org, "Acme")
    with Receiver() as receiver:
        hook = await _create(client, team[FULL].token, receiver.url, ["STATUS_LOST"])
        await write_events([_event(acme, LOST, T0, CustomerStatus.TRIAL, {"status": "TRIAL"})])
        await send_due_deliveries(config(http_settings), T0)
    [(headers, body)] = receiver.requests
    secret = hook["signingSecret"]
    assert verify(secret, headers, body)
    assert not verify(secret + "0", headers, body)
    assert not verify(secret, headers, body.replace(b"TRIAL", b"ACTIVE"))
    old = headers | {"X-PartnerHub-Timestamp": str(int(headers["X-PartnerHub-Timestamp"]) - 600)}
    assert not verify(secret, old, body)
