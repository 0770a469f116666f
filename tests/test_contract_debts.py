"""Small contract debts (issue 14, item 10): audit events through `node(id:)`
within the audit log's scope, `OverageRow.overageLicenses` adding up to its
KPIs, and a trial and its TRIAL subscription row never disagreeing on status."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx

from app.domain.ids import encode_global_id
from app.domain.trials import (
    TRIAL_SUBSCRIPTION_STATUS,
    align_trial_subscriptions,
    expire_due_trials,
)
from app.models.audit import AuditEvent
from app.models.customers import Customer
from app.models.enums import (
    LICENSE_PRODUCT,
    AdminRole,
    LicenseType,
    SubscriptionKind,
    SubscriptionStatus,
    TrialStatus,
)
from app.models.subscriptions import LicenseLine, Subscription
from app.models.trials import Trial
from tests import factories
from tests.graphql_client import data, gql

# ------------------------------------------------------- audit events by id ----

CREATE_TAG = """mutation($input: CreateTagInput!) { createTag(input: $input) {
  tag { id } userErrors { field message code } } }"""
AUDIT_LOG = "{ auditLog(first: 10) { nodes { id at action targetId summary actor { email } } } }"
AUDIT_NODE = """query($id: ID!) { node(id: $id) { id __typename
  ... on AuditEvent { at action targetId summary actor { email } } } }"""


async def test_audit_events_resolve_through_node_for_the_roles_that_read_the_audit_log(
    client: httpx.AsyncClient, db
) -> None:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    stranger = await factories.admin(contoso, AdminRole.FULL_ADMIN)
    full = team[AdminRole.FULL_ADMIN]
    made = await data(client, full.token, CREATE_TAG, {"input": {"name": "Gold"}})
    assert made["createTag"]["userErrors"] == []
    theirs = await data(client, stranger.token, CREATE_TAG, {"input": {"name": "Silver"}})
    assert theirs["createTag"]["userErrors"] == []

    [listed] = (await data(client, full.token, AUDIT_LOG))["auditLog"]["nodes"]
    event = await AuditEvent.get(partner_id=northwind.id)
    assert listed["id"] == encode_global_id("AuditEvent", event.id)
    assert listed["action"] == "tag.create" and listed["actor"]["email"] == full.admin.email
    assert listed["targetId"] == made["createTag"]["tag"]["id"]

    # The roles that read the audit log find it by its id, as the log lists it.
    for role in (AdminRole.FULL_ADMIN, AdminRole.READ_ONLY_ADMIN):
        found = (await data(client, team[role].token, AUDIT_NODE, {"id": listed["id"]}))["node"]
        assert found == {**listed, "__typename": "AuditEvent"}, role

    # The roles the audit log refuses get null, like a missing id.
    for role in (AdminRole.ADMIN, AdminRole.SALES_FULL_ADMIN, AdminRole.SALES_ADMIN):
        refused = (await gql(client, team[role].token, AUDIT_LOG)).json()
        assert refused["data"] is None and "FULL_ADMIN" in refused["errors"][0]["message"]
        answer = await data(client, team[role].token, AUDIT_NODE, {"id": listed["id"]})
        assert answer == {"node": None}, role

    # Another partner's event is null exactly like a missing id, cost included.
    contoso_event = await AuditEvent.get(partner_id=contoso.id)
    missing = encode_global_id("AuditEvent", contoso_event.id + 1000)
    answers = []
    for token, global_id in (
        (stranger.token, listed["id"]),
        (full.token, encode_global_id("AuditEvent", contoso_event.id)),
        (full.token, missing),
    ):
        body = (await gql(client, token, AUDIT_NODE, {"id": global_id})).json()
        assert body["data"] == {"node": None} and "errors" not in body
        answers.append(body["extensions"]["cost"]["requestedQueryCost"])
    assert answers[0] == answers[1] == answers[2]
    # And the other partner finds its own.
    own = await data(
        client, stranger.token, AUDIT_NODE, {"id": encode_global_id("AuditEvent", contoso_event.id)}
    )
    assert own["node"]["action"] == "tag.create" and own["node"]["actor"]["email"] == (
        stranger.admin.email
    )


# ----------------------------------------------------------- overage rows ----

L = LicenseType
# SPEC.md: the Meetings/Calling toggle's license types.
FAMILIES = {
    "CALLING": {
        L.CALLING_PROFESSIONAL, L.CALLING_STANDARD, L.WEBEX_CALLING, L.WEBEX_VOICE,
        L.COMMON_AREA_CALLING, L.CUSTOMER_ASSIST, L.ATTENDANT_CONSOLE,
    },
    "MEETINGS": {L.MEETINGS, L.WEBEX_SUITE},
}  # fmt: skip
HOLDING = {"ACTIVE", "SUSPENDED", "PENDING_SETUP"}

# customer, subscription, kind, status, [(license type, quantity, assigned)]
SEEDED = [
    ("Mixed lines", "Sub-mixed", "SUBSCRIPTION", "ACTIVE",
     # Calling: +5, -8 (offsets nothing), +2 -> 7 while assigned < quantity in all.
     [(L.CALLING_PROFESSIONAL, 10, 15), (L.CALLING_STANDARD, 20, 12), (L.WEBEX_CALLING, 5, 7),
      (L.MEETINGS, 10, 14), (L.WEBEX_SUITE, 3, 1)]),
    ("Mixed lines", "Sub-mixed-2", "SUBSCRIPTION", "PENDING_SETUP", [(L.WEBEX_VOICE, 1, 4)]),
    ("Suspended", "Sub-suspended", "SUBSCRIPTION", "SUSPENDED", [(L.CALLING_PROFESSIONAL, 4, 6)]),
    ("On trial", "ET-0000000001", "TRIAL", "ACTIVE", [(L.CALLING_PROFESSIONAL, 2, 3)]),
    ("Expired", "Sub-expired", "SUBSCRIPTION", "EXPIRED", [(L.CALLING_PROFESSIONAL, 10, 30)]),
    ("Cancelled", "Sub-cancelled", "SUBSCRIPTION", "CANCELLED", [(L.MEETINGS, 10, 30)]),
    ("Within limits", "Sub-within", "SUBSCRIPTION", "ACTIVE",
     [(L.CALLING_PROFESSIONAL, 10, 10), (L.MEETINGS, 10, 2)]),
]  # fmt: skip

OVERAGE = """query($p: ProductFamily!) { subscriptionAnalytics(product: $p) {
  overLicenseLimit { kpis { customers totalOverageLicenses averageOverage }
    rows(first: 100) { totalCount nodes { customer { name } subscriptionId totalLicenses
      assigned overageLicenses } } } } }"""


async def _seed_overage(org, today: date, rows=SEEDED) -> dict[str, Customer]:
    customers: dict[str, Customer] = {}
    now = datetime.now(UTC)
    for name, code, kind, status, lines in rows:
        if name not in customers:
            customers[name] = await factories.customer(org, name)
        sub = await Subscription.create(
            customer=customers[name], subscription_id=code, kind=kind, status=status,
            start_date=today - timedelta(days=200), end_date=today + timedelta(days=100),
            added_at=now - timedelta(days=200),
        )  # fmt: skip
        for license_type, quantity, assigned in lines:
            await LicenseLine.create(
                subscription=sub, license_type=license_type,
                product=LICENSE_PRODUCT[license_type], quantity=quantity, assigned=assigned,
            )  # fmt: skip
    return customers


def _expected_overage(family: str, customers: set[str]) -> dict[str, tuple[str, int]]:
    """Subscription id -> (customer, its overage on the family's lines), for the
    holding subscriptions with any overage (SPEC.md: over license limit)."""
    found = {}
    for name, code, _, status, lines in SEEDED:
        overage = sum(max(a - q, 0) for t, q, a in lines if t in FAMILIES[family])
        if name in customers and status in HOLDING and overage > 0:
            found[code] = (name, overage)
    return found


async def test_overage_rows_carry_their_line_overage_and_add_up_to_the_kpis(
    client: httpx.AsyncClient, db
) -> None:
    today = datetime.now(UTC).date()
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    customers = await _seed_overage(northwind, today)
    # Another partner's overage is no part of Northwind's figures.
    await _seed_overage(
        contoso, today, [("Theirs", "Sub-theirs", "SUBSCRIPTION", "ACTIVE",
                          [(L.CALLING_PROFESSIONAL, 1, 100), (L.MEETINGS, 1, 100)])]
    )  # fmt: skip
    await factories.assign(team[AdminRole.ADMIN].admin, customers["Suspended"])

    cases = [
        (AdminRole.FULL_ADMIN, set(customers)),
        (AdminRole.READ_ONLY_ADMIN, set(customers)),
        (AdminRole.ADMIN, {"Suspended"}),
    ]
    for role, visible in cases:
        for family in FAMILIES:
            answer = await data(client, team[role].token, OVERAGE, {"p": family})
            section = answer["subscriptionAnalytics"]["overLicenseLimit"]
            want = _expected_overage(family, visible)
            got = {
                n["subscriptionId"]: (n["customer"]["name"], n["overageLicenses"])
                for n in section["rows"]["nodes"]
            }
            assert got == want, (role, family)
            assert section["rows"]["totalCount"] == len(want)
            total = sum(overage for _, overage in want.values())
            people = len({name for name, _ in want.values()})
            assert section["kpis"] == {
                "customers": people,
                "totalOverageLicenses": total,
                "averageOverage": round(total / people, 1) if people else 0.0,
            }, (role, family)
            # The rows add up to the KPI.
            assert sum(n["overageLicenses"] for n in section["rows"]["nodes"]) == total
    # The figures the fixture is there for: per line, not assigned minus quantity.
    assert _expected_overage("CALLING", set(customers)) == {
        "Sub-mixed": ("Mixed lines", 7),
        "Sub-mixed-2": ("Mixed lines", 3),
        "Sub-suspended": ("Suspended", 2),
        "ET-0000000001": ("On trial", 1),
    }
    assert _expected_overage("MEETINGS", set(customers)) == {"Sub-mixed": ("Mixed lines", 4)}


# ---------------------------------------------- trials and their subscriptions ----

START = """mutation($input: StartTrialInput!) { startTrial(input: $input) {
  trial { id trialId status } userErrors { field message code } } }"""
CANCEL = """mutation($input: CancelTrialInput!) { cancelTrial(input: $input) {
  trial { status } userErrors { field message code } } }"""
TRIALS_AND_SUBSCRIPTIONS = """query($id: ID!) { customer(id: $id) {
  trials { trialId status }
  subscriptions(first: 20) { nodes { subscriptionId kind status } } } }"""


async def _pairs(client: httpx.AsyncClient, token: str, customer: Customer) -> dict[str, tuple]:
    """Trial id -> (the trial's status, its TRIAL subscription's status), as the
    customer detail shows them."""
    answer = await data(
        client,
        token,
        TRIALS_AND_SUBSCRIPTIONS,
        {"id": encode_global_id("Customer", customer.id)},
    )
    subs = {
        n["subscriptionId"]: n["status"]
        for n in answer["customer"]["subscriptions"]["nodes"]
        if n["kind"] == "TRIAL"
    }
    return {
        t["trialId"]: (t["status"], subs.get(t["trialId"])) for t in answer["customer"]["trials"]
    }


async def pairs_disagreeing() -> list[tuple[str, str, str]]:
    """Every (trial id, trial status, subscription status) that disagree in the database."""
    out = []
    for trial in await Trial.all():
        sub = await Subscription.get(trial_id=trial.id, kind=SubscriptionKind.TRIAL)
        if sub.status.value != trial.status.value:
            out.append((trial.trial_id, trial.status.value, sub.status.value))
    return out


async def test_a_trial_and_its_subscription_row_agree_through_start_cancel_and_expiry(
    client: httpx.AsyncClient, db
) -> None:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(northwind, AdminRole.FULL_ADMIN)
    customers = [await factories.customer(northwind, f"Customer {n}") for n in range(3)]
    started = {}
    for customer in customers:
        answer = await data(
            client,
            full.token,
            START,
            {"input": {"customerId": encode_global_id("Customer", customer.id),
                       "products": [{"product": "CALLING", "licenses": 10}], "durationDays": 30}},
        )  # fmt: skip
        assert answer["startTrial"]["userErrors"] == []
        started[customer.id] = answer["startTrial"]["trial"]
    active, cancelled, expired = customers
    for customer in customers:
        trial = started[customer.id]
        assert await _pairs(client, full.token, customer) == {
            trial["trialId"]: ("ACTIVE", "ACTIVE")
        }

    answer = await data(
        client, full.token, CANCEL, {"input": {"trialId": started[cancelled.id]["id"]}}
    )
    assert answer["cancelTrial"] == {"trial": {"status": "CANCELLED"}, "userErrors": []}
    assert await _pairs(client, full.token, cancelled) == {
        started[cancelled.id]["trialId"]: ("CANCELLED", "CANCELLED")
    }

    # Its end date passes: the expiry job moves both rows.
    today = datetime.now(UTC).date()
    await Trial.filter(trial_id=started[expired.id]["trialId"]).update(
        end_date=today - timedelta(days=1)
    )
    assert await expire_due_trials(today) == 1
    assert await _pairs(client, full.token, expired) == {
        started[expired.id]["trialId"]: ("EXPIRED", "EXPIRED")
    }
    # The cancelled trial's end date passes too: it stays CANCELLED on both rows.
    await Trial.filter(trial_id=started[cancelled.id]["trialId"]).update(
        end_date=today - timedelta(days=1)
    )
    assert await expire_due_trials(today) == 0
    assert await _pairs(client, full.token, cancelled) == {
        started[cancelled.id]["trialId"]: ("CANCELLED", "CANCELLED")
    }
    assert await _pairs(client, full.token, active) == {
        started[active.id]["trialId"]: ("ACTIVE", "ACTIVE")
    }
    assert await pairs_disagreeing() == []


async def test_every_trial_status_has_its_subscription_status_and_migrate_aligns_old_rows(
    client: httpx.AsyncClient, db
) -> None:
    assert set(TRIAL_SUBSCRIPTION_STATUS) == set(TrialStatus)
    assert all(s.value == t.value for t, s in TRIAL_SUBSCRIPTION_STATUS.items())

    northwind = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(northwind, AdminRole.FULL_ADMIN)
    today = datetime.now(UTC).date()
    # The rows an older release wrote: every ended trial's subscription EXPIRED
    # (ET-1000000027 of the demo: a CONVERTED trial whose row said EXPIRED).
    customer = await factories.customer(northwind, "Acme")
    trials = {}
    for n, status in enumerate(TrialStatus):
        trial = await Trial.create(
            customer=customer, trial_id=f"ET-10000000{n:02d}", status=status,
            start_date=today - timedelta(days=100 + 40 * n),
            end_date=today + timedelta(days=5) if status is TrialStatus.ACTIVE
            else today - timedelta(days=70 + 40 * n),
        )  # fmt: skip
        await Subscription.create(
            customer=customer, subscription_id=trial.trial_id, kind=SubscriptionKind.TRIAL,
            status=SubscriptionStatus.ACTIVE if status is TrialStatus.ACTIVE
            else SubscriptionStatus.EXPIRED,
            start_date=trial.start_date, end_date=trial.end_date,
            added_at=datetime.combine(trial.start_date, datetime.min.time(), UTC), trial=trial,
        )  # fmt: skip
        trials[status] = trial.trial_id
    assert set(await pairs_disagreeing()) == {
        (trials[TrialStatus.CANCELLED], "CANCELLED", "EXPIRED"),
        (trials[TrialStatus.CONVERTED], "CONVERTED", "EXPIRED"),
    }

    # What `partnerhub migrate` runs: the two rows change, the others stay, and a
    # second run changes nothing.
    assert await align_trial_subscriptions() == 2
    assert await align_trial_subscriptions() == 0
    assert await _pairs(client, full.token, customer) == {
        trials[status]: (status.value, status.value) for status in TrialStatus
    }


async def test_the_demo_writes_every_trial_status_on_both_rows(db) -> None:
    from app.demo import load_demo

    await load_demo(24, seed=1)
    statuses = {t.status for t in await Trial.all()}
    assert {TrialStatus.ACTIVE, TrialStatus.CONVERTED} <= statuses
    assert await pairs_disagreeing() == []
    converted = await Trial.filter(status=TrialStatus.CONVERTED).first()
    assert converted is not None
    row = await Subscription.get(trial_id=converted.id)
    assert row.status == SubscriptionStatus.CONVERTED
