"""Trials: starting (existing or new customer), bad input, extending within
180 days, cancelling, the trials list, and all-or-nothing writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.domain.ids import encode_global_id as gid
from app.models.admins import CustomerAssignment
from app.models.customers import Customer, CustomerUser
from app.models.enums import AdminRole
from app.models.subscriptions import LicenseLine, Subscription
from app.models.trials import Trial
from tests import factories
from tests.graphql_client import data
from tests.test_mutation_matrix import everything

START = """mutation($input: StartTrialInput!) { startTrial(input: $input) {
  trial { id trialId status startDate endDate durationDays daysRemaining
          products { product licenses } startedBy { email }
          customer { id name region statuses managedBy subscriptions(first: 5) { nodes { kind subscriptionId
            licenses { licenseType quantity assigned } } } } }
  userErrors { field message code } } }"""
EXTEND = """mutation($input: ExtendTrialInput!) { extendTrial(input: $input) {
  trial { endDate durationDays } userErrors { field message code } } }"""
CANCEL = """mutation($input: CancelTrialInput!) { cancelTrial(input: $input) {
  trial { status daysRemaining } userErrors { field message code } } }"""


@pytest.fixture
async def org(db):
    org = await factories.partner("Northwind Partners", "northwind.example")
    return org, await factories.team(org)


def start_input(**overrides: object) -> dict:
    base = {"products": [{"product": "CALLING", "licenses": 25}], "durationDays": 30}
    return {"input": {**base, **overrides}}


async def test_a_trial_for_an_existing_customer(client: httpx.AsyncClient, org) -> None:
    partner, team = org
    customer = await factories.customer(partner, "Acme")
    today = datetime.now(UTC).date()
    answer = await data(
        client,
        team[AdminRole.SALES_FULL_ADMIN].token,
        START,
        start_input(
            customerId=gid("Customer", customer.id),
            products=[
                {"product": "MEETINGS", "licenses": 100},
                {"product": "CALLING", "licenses": 1},
            ],
        ),
    )
    result = answer["startTrial"]
    assert result["userErrors"] == []
    trial = result["trial"]
    assert re.fullmatch(r"ET-\d{12}", trial["trialId"])
    assert trial["status"] == "ACTIVE" and trial["startDate"] == today.isoformat()
    assert trial["endDate"] == (today + timedelta(days=30)).isoformat()
    assert trial["durationDays"] == 30 and trial["daysRemaining"] == 30
    assert trial["products"] == [
        {"product": "MEETINGS", "licenses": 100},
        {"product": "CALLING", "licenses": 1},
    ]
    assert trial["startedBy"] == {"email": team[AdminRole.SALES_FULL_ADMIN].admin.email}
    assert "TRIAL" in trial["customer"]["statuses"]
    [sub] = trial["customer"]["subscriptions"]["nodes"]
    assert sub["kind"] == "TRIAL" and sub["subscriptionId"] == trial["trialId"]
    assert sorted(
        (line["licenseType"], line["quantity"], line["assigned"]) for line in sub["licenses"]
    ) == [
        ("CALLING_PROFESSIONAL", 1, 0),
        ("MEETINGS", 100, 0),
    ]

    # A second trial while one is ongoing is a conflict, and changes nothing.
    before = await everything()
    again = await data(
        client,
        team[AdminRole.FULL_ADMIN].token,
        START,
        start_input(customerId=gid("Customer", customer.id)),
    )
    assert again["startTrial"]["userErrors"] == [
        {
            "field": ["input", "customerId"],
            "message": "Acme already has an ongoing trial.",
            "code": "CONFLICT",
        }
    ]
    assert await everything() == before


@pytest.mark.parametrize("role", [AdminRole.ADMIN, AdminRole.SALES_ADMIN, AdminRole.FULL_ADMIN])
async def test_a_trial_for_a_new_customer(client: httpx.AsyncClient, org, role: AdminRole) -> None:
    partner, team = org
    viewer = team[role]
    answer = await data(
        client,
        viewer.token,
        START,
        start_input(
            newCustomer={
                "name": "  Brand  New Co ",
                "adminEmail": "Boss@BrandNew.example",
                "region": "EU",
            }
        ),
    )
    result = answer["startTrial"]
    assert result["userErrors"] == []
    customer = result["trial"]["customer"]
    assert customer["name"] == "Brand New Co" and customer["region"] == "EU"
    record = await Customer.get(name="Brand New Co")
    assert record.partner_id == partner.id and record.created_by_id == viewer.admin.id
    user = await CustomerUser.get(customer_id=record.id)
    assert user.email == "boss@brandnew.example" and user.is_admin
    # Roles that see only assigned customers are assigned to the new one, and see it.
    assigned = await CustomerAssignment.filter(
        customer_id=record.id, admin_id=viewer.admin.id
    ).exists()
    assert assigned == (role is AdminRole.ADMIN or role is AdminRole.SALES_ADMIN)
    # A customer of the viewer's own partner, whoever is assigned to it.
    assert customer["managedBy"] == "PARTNER_ORGANIZATION"
    listed = await data(client, viewer.token, "{ customers { nodes { name } } }")
    assert {"name": "Brand New Co"} in listed["customers"]["nodes"]


BAD_STARTS = [
    ({"durationDays": 0}, ["input", "durationDays"]),
    ({"durationDays": 91}, ["input", "durationDays"]),
    ({"durationDays": -1}, ["input", "durationDays"]),
    ({"products": [{"product": "CALLING", "licenses": 0}]}, ["input", "products", "0", "licenses"]),
    (
        {"products": [{"product": "CALLING", "licenses": 100_001}]},
        ["input", "products", "0", "licenses"],
    ),
    (
        {
            "products": [
                {"product": "CALLING", "licenses": 5},
                {"product": "CALLING", "licenses": 6},
            ]
        },
        ["input", "products", "1", "product"],
    ),
    ({"products": []}, ["input", "products"]),
    (
        {"newCustomer": {"name": "X", "adminEmail": "not-an-email", "region": "US"}},
        ["input", "newCustomer", "adminEmail"],
    ),
    (
        {"newCustomer": {"name": " ", "adminEmail": "a@b.example", "region": "US"}},
        ["input", "newCustomer", "name"],
    ),
    (
        {"newCustomer": {"name": "x" * 10_000, "adminEmail": "a@b.example", "region": "US"}},
        ["input", "newCustomer", "name"],
    ),
    ({"both": True}, ["input"]),
    ({"neither": True}, ["input"]),
]


@pytest.mark.parametrize(("change", "field"), BAD_STARTS)
async def test_bad_trial_input_is_refused_with_its_field_and_changes_nothing(
    client: httpx.AsyncClient, org, change: dict, field: list[str]
) -> None:
    partner, team = org
    change = dict(change)  # the parameter is shared by both database runs
    customer = await factories.customer(partner)
    fields = {"customerId": gid("Customer", customer.id)}
    if change.pop("both", False):
        fields["newCustomer"] = {"name": "N", "adminEmail": "a@b.example", "region": "US"}
    if change.pop("neither", False):
        fields = {}
    if "newCustomer" in change:
        fields = {}
    before = await everything()
    answer = await data(
        client, team[AdminRole.FULL_ADMIN].token, START, start_input(**fields, **change)
    )
    result = answer["startTrial"]
    assert result["trial"] is None
    assert field in [e["field"] for e in result["userErrors"]]
    assert all(e["code"] == "INVALID" for e in result["userErrors"])
    assert await everything() == before


async def test_extend_adds_1_to_30_days_up_to_180_in_all(client: httpx.AsyncClient, org) -> None:
    partner, team = org
    token = team[AdminRole.ADMIN].token
    customer = await factories.customer(partner)
    await factories.assign(team[AdminRole.ADMIN].admin, customer)
    today = datetime.now(UTC).date()
    trial = await factories.trial(
        customer, today - timedelta(days=10), today + timedelta(days=80)
    )  # 90 days
    trial_id = gid("Trial", trial.id)
    for days in (0, 31, -5):
        answer = await data(client, token, EXTEND, {"input": {"trialId": trial_id, "days": days}})
        assert answer["extendTrial"]["userErrors"][0]["field"] == ["input", "days"]
    for _ in range(3):  # 90 + 3 x 30 = 180: allowed
        answer = await data(client, token, EXTEND, {"input": {"trialId": trial_id, "days": 30}})
        assert answer["extendTrial"]["userErrors"] == []
    assert answer["extendTrial"]["trial"]["durationDays"] == 180
    assert (await Subscription.get(trial_id=trial.id)).end_date == today + timedelta(days=170)
    before = await everything()
    over = await data(client, token, EXTEND, {"input": {"trialId": trial_id, "days": 1}})
    assert over["extendTrial"]["userErrors"][0]["code"] == "LIMIT_EXCEEDED"
    assert await everything() == before


async def test_cancel_ends_an_active_trial_now_and_only_once(
    client: httpx.AsyncClient, org
) -> None:
    partner, team = org
    token = team[AdminRole.SALES_FULL_ADMIN].token
    customer = await factories.customer(partner)
    today = datetime.now(UTC).date()
    trial = await factories.trial(customer, today - timedelta(days=1), today + timedelta(days=20))
    answer = await data(client, token, CANCEL, {"input": {"trialId": gid("Trial", trial.id)}})
    assert answer["cancelTrial"] == {
        "trial": {"status": "CANCELLED", "daysRemaining": 0},
        "userErrors": [],
    }
    assert (await Subscription.get(trial_id=trial.id)).status == "CANCELLED"
    assert (await Trial.get(id=trial.id)).ended_at is not None
    statuses = await data(
        client,
        token,
        "query($id: ID!) { customer(id: $id) { statuses } }",
        {"id": gid("Customer", customer.id)},
    )
    assert "TRIAL" not in statuses["customer"]["statuses"]
    for mutation, name in ((CANCEL, "cancelTrial"), (EXTEND, "extendTrial")):
        variables = {"input": {"trialId": gid("Trial", trial.id)}}
        if name == "extendTrial":
            variables["input"]["days"] = 5
        again = await data(client, token, mutation, variables)
        assert again[name]["userErrors"][0]["code"] == "CONFLICT"
    # A new trial may start now that none is ongoing.
    restart = await data(client, token, START, start_input(customerId=gid("Customer", customer.id)))
    assert restart["startTrial"]["userErrors"] == []


async def test_trials_list_filters_and_scope(client: httpx.AsyncClient, org) -> None:
    partner, team = org
    other = await factories.partner("Contoso Partners", "contoso.example")
    today = datetime.now(UTC).date()
    c1, c2, c3 = [await factories.customer(partner, f"C{n}") for n in range(3)]
    soon = await factories.trial(c1, today - timedelta(days=20), today + timedelta(days=3))
    later = await factories.trial(c2, today - timedelta(days=2), today + timedelta(days=40))
    ended = await factories.trial(
        c3, today - timedelta(days=60), today - timedelta(days=30), status="EXPIRED"
    )
    await factories.trial(await factories.customer(other), today, today + timedelta(days=3))
    await factories.assign(team[AdminRole.ADMIN].admin, c2)
    query = """query($f: TrialFilter, $first: Int, $after: String) { trials(filter: $f, first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } nodes { trialId customer { name } } } }"""
    full = team[AdminRole.FULL_ADMIN].token

    async def ids(flt: dict | None, token: str = full) -> list[str]:
        answer = await data(client, token, query, {"f": flt})
        return [n["trialId"] for n in answer["trials"]["nodes"]]

    assert await ids(None) == [ended.trial_id, soon.trial_id, later.trial_id]  # soonest end first
    assert await ids({"statuses": ["ACTIVE"]}) == [soon.trial_id, later.trial_id]
    assert await ids({"endingWithinDays": 7}) == [soon.trial_id]
    assert await ids({"customerId": gid("Customer", c2.id)}) == [later.trial_id]
    assert await ids(None, team[AdminRole.ADMIN].token) == [later.trial_id]
    page = await data(client, full, query, {"first": 2})
    assert page["trials"]["pageInfo"]["hasNextPage"] and page["trials"]["totalCount"] == 3
    rest = await data(
        client, full, query, {"first": 2, "after": page["trials"]["pageInfo"]["endCursor"]}
    )
    assert [n["trialId"] for n in rest["trials"]["nodes"]] == [later.trial_id]
    bad = await client.post(
        "/graphql",
        json={"query": query, "variables": {"f": {"endingWithinDays": -1}}},
        headers={"Authorization": f"Bearer {full}"},
    )
    assert "endingWithinDays" in bad.json()["errors"][0]["message"]


async def test_a_start_that_fails_midway_stores_nothing(
    client: httpx.AsyncClient, org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit event is the last write of startTrial: make it fail, and the new
    customer, its user, the trial, its subscription and lines are all gone."""
    from app.domain import audit

    _, team = org

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "record", broken)
    before = await everything()
    variables = start_input(
        newCustomer={"name": "Half Written", "adminEmail": "x@y.example", "region": "US"}
    )
    response = await client.post(
        "/graphql",
        headers={"Authorization": f"Bearer {team[AdminRole.ADMIN].token}"},
        json={"query": START, "variables": variables},
    )
    assert response.json()["errors"][0]["message"] == "Unexpected error."
    assert await everything() == before
    assert not await LicenseLine.all().exists()
