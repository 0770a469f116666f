"""What the customer, subscription and trial readers hand the GraphQL layer:
plain typed values (no table model) equal to the stored rows, within the
viewer's scope; and the subscriptions of a customer paged by keyset, so a
page's cursor still continues where it was after subscriptions come and go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from app.domain.access import Viewer
from app.domain.customer_pages import SubscriptionRow, TrialRow
from app.domain.customers import CustomerRow, get_customer, list_customers
from app.domain.ids import encode_global_id as gid
from app.domain.lookups import customers_by_ids, subscription_by_id, trial_by_id
from app.domain.statuses import StatusClock
from app.domain.trials import (
    TrialLicenseRequest,
    cancel_trial,
    extend_trial,
    list_trials,
    start_trial,
)
from app.models.customers import Customer
from app.models.enums import AdminRole, Product, Region, SubscriptionStatus, TrialStatus
from app.models.subscriptions import Subscription
from app.models.trials import Trial
from tests import factories
from tests.graphql_client import data, gql
from tests.world import subscription


async def _viewer(holder: factories.AdminWithToken) -> Viewer:
    await holder.admin.fetch_related("partner")
    return Viewer(admin=holder.admin, partner=holder.admin.partner)


def _same_customer(row: CustomerRow, model: Customer) -> None:
    assert type(row) is CustomerRow
    assert (row.id, row.partner_id, row.name, row.org_id) == (
        model.id,
        model.partner_id,  # type: ignore[attr-defined]
        model.name,
        model.org_id,
    )
    assert (row.external_id, row.location) == (model.external_id, model.location)
    assert row.region is Region(model.region)
    # The same instant, with its offset (a naive time would not compare equal).
    assert row.created_at == model.created_at and row.created_at.utcoffset() is not None
    assert row.last_admin_activity_at == model.last_admin_activity_at


async def test_customer_readers_hand_out_rows_equal_to_the_stored_customers(db) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    team = await factories.team(org)
    acme = await factories.customer(org, "Acme", region=Region.EU)
    bolt = await factories.customer(org, "Bolt")
    acme.external_id, acme.location = "EXT-1", "Berlin"
    acme.last_admin_activity_at = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=UTC)
    await acme.save()
    await factories.assign(team[AdminRole.ADMIN].admin, acme)
    stored = {c.id: c for c in await Customer.filter(id__in=[acme.id, bolt.id])}

    full = await _viewer(team[AdminRole.FULL_ADMIN])
    page = await list_customers(full, StatusClock(now=datetime.now(UTC)))
    assert [c.name for c in page.items] == ["Acme", "Bolt"]
    for row in page.items:
        _same_customer(row, stored[row.id])
    found = await customers_by_ids([bolt.id, acme.id, acme.id])
    assert sorted(found) == sorted(stored)
    for key, row in found.items():
        _same_customer(row, stored[key])

    admin = await _viewer(team[AdminRole.ADMIN])  # sees only its assigned customer
    by_id = await get_customer(admin, acme.id)
    assert by_id is not None
    _same_customer(by_id, stored[acme.id])
    assert await get_customer(admin, bolt.id) is None
    assert [c.id for c in (await list_customers(admin, StatusClock(datetime.now(UTC)))).items] == [
        acme.id
    ]


async def test_subscription_and_trial_lookups_are_typed_and_scoped(db) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    other = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(org)
    stranger = await _viewer(await factories.admin(other, AdminRole.FULL_ADMIN))
    today = datetime.now(UTC).date()
    acme, bolt = await factories.customer(org, "Acme"), await factories.customer(org, "Bolt")
    await factories.assign(team[AdminRole.ADMIN].admin, acme)
    trial = await factories.trial(acme, today, today + timedelta(days=10))
    sub = await subscription(bolt, SubscriptionStatus.ACTIVE, None, today=today, auto_renew=True)
    trial_sub = await Subscription.get(trial_id=trial.id)
    full, admin = await _viewer(team[AdminRole.FULL_ADMIN]), await _viewer(team[AdminRole.ADMIN])

    row = await subscription_by_id(full, sub.id)
    assert type(row) is SubscriptionRow
    assert (row.id, row.customer_id, row.subscription_id, row.status, row.auto_renew) == (
        sub.id,
        bolt.id,
        sub.subscription_id,
        SubscriptionStatus.ACTIVE,
        True,
    )
    assert (row.start_date, row.end_date, row.added_at) == (sub.start_date, None, sub.added_at)
    # Nothing of its relations was read: the GraphQL layer loads them when asked.
    assert (row.lines, row.invoice_loaded, row.orders) == (None, False, None)
    assert await subscription_by_id(admin, sub.id) is None  # Bolt is not the ADMIN's
    assert await subscription_by_id(stranger, sub.id) is None
    assert (await subscription_by_id(admin, trial_sub.id)).subscription_id == trial.trial_id  # type: ignore[union-attr]

    found = await trial_by_id(admin, trial.id)
    assert type(found) is TrialRow
    assert (found.id, found.customer_id, found.trial_id, found.status) == (
        trial.id,
        acme.id,
        trial.trial_id,
        TrialStatus.ACTIVE,
    )
    assert (found.start_date, found.end_date) == (today, today + timedelta(days=10))
    assert await trial_by_id(stranger, trial.id) is None


async def test_trial_mutations_and_the_trials_list_answer_typed_values(db) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    team = await factories.team(org)
    viewer = await _viewer(team[AdminRole.FULL_ADMIN])
    acme = await factories.customer(org, "Acme")
    today = datetime.now(UTC).date()

    started = await start_trial(
        viewer,
        customer_id=acme.id,
        new_customer=None,
        products=[TrialLicenseRequest(Product.CALLING, 5)],
        duration_days=20,
    )
    stored = await Trial.get(customer_id=acme.id)
    assert type(started) is TrialRow
    assert (started.id, started.trial_id, started.started_by_id) == (
        stored.id,
        stored.trial_id,
        viewer.admin.id,
    )
    assert (started.start_date, started.end_date) == (today, today + timedelta(days=20))

    extended = await extend_trial(viewer, stored.id, 7)
    assert type(extended) is TrialRow and extended.end_date == today + timedelta(days=27)
    cancelled = await cancel_trial(viewer, stored.id)
    assert type(cancelled) is TrialRow and cancelled.status is TrialStatus.CANCELLED
    assert (await Trial.get(id=stored.id)).status == TrialStatus.CANCELLED

    page = await list_trials(viewer, first=5, after=None, today=today)
    assert [type(t) for t in page.items] == [TrialRow]
    assert page.items[0].end_date == today + timedelta(days=27)


SUBSCRIPTIONS = """query($id: ID!, $first: Int, $after: String) { customer(id: $id) {
  subscriptions(first: $first, after: $after) { totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { subscriptionId } } } } }"""


async def test_a_subscriptions_cursor_continues_after_its_edge_when_the_list_changes(
    client: httpx.AsyncClient,
) -> None:
    """Newest first: a subscription added before the next page is asked does not
    repeat the page's last one, and a deleted edge still tells where to go on
    (offsets would shift by one either way)."""
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    acme = await factories.customer(org, "Acme")
    today = datetime.now(UTC).date()
    subs = [
        await subscription(acme, SubscriptionStatus.ACTIVE, None, today=today, added_days_ago=n)
        for n in (10, 20, 30, 40, 50)
    ]
    names = [s.subscription_id for s in subs]  # newest first
    variables = {"id": gid("Customer", acme.id), "first": 2}

    first = (await data(client, token, SUBSCRIPTIONS, variables))["customer"]["subscriptions"]
    assert [e["node"]["subscriptionId"] for e in first["edges"]] == names[:2]
    assert first["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "endCursor": first["edges"][-1]["cursor"],
    }
    newest = await subscription(
        acme, SubscriptionStatus.ACTIVE, None, today=today, added_days_ago=1
    )
    after = first["pageInfo"]["endCursor"]
    second = (await data(client, token, SUBSCRIPTIONS, variables | {"after": after}))["customer"][
        "subscriptions"
    ]
    assert [e["node"]["subscriptionId"] for e in second["edges"]] == names[2:4]
    assert second["totalCount"] == 6 and second["pageInfo"]["hasPreviousPage"] is True

    await Subscription.filter(id=subs[3].id).delete()  # the second page's last edge
    third = (
        await data(
            client, token, SUBSCRIPTIONS, variables | {"after": second["pageInfo"]["endCursor"]}
        )
    )["customer"]["subscriptions"]
    assert [e["node"]["subscriptionId"] for e in third["edges"]] == [names[4]]
    assert third["pageInfo"]["hasNextPage"] is False

    whole = await data(client, token, SUBSCRIPTIONS, variables | {"first": 10})
    assert [e["node"]["subscriptionId"] for e in whole["customer"]["subscriptions"]["edges"]] == [
        newest.subscription_id,
        *names[:3],
        names[4],
    ]


async def test_a_cursor_of_one_list_is_refused_by_another(client: httpx.AsyncClient) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.FULL_ADMIN)).token
    acme = await factories.customer(org, "Acme")
    await factories.customer(org, "Bolt")
    today = datetime.now(UTC).date()
    for n in (10, 20):
        await subscription(acme, SubscriptionStatus.ACTIVE, None, today=today, added_days_ago=n)
    customers = await data(client, token, "{ customers(first: 1) { pageInfo { endCursor } } }")
    customer_cursor = customers["customers"]["pageInfo"]["endCursor"]
    variables = {"id": gid("Customer", acme.id), "first": 1}
    subs = await data(client, token, SUBSCRIPTIONS, variables)
    sub_cursor = subs["customer"]["subscriptions"]["pageInfo"]["endCursor"]

    refused = await gql(client, token, SUBSCRIPTIONS, variables | {"after": customer_cursor})
    assert "not a cursor of this list" in refused.json()["errors"][0]["message"]
    refused = await gql(
        client,
        token,
        "query($after: String) { customers(first: 1, after: $after) { totalCount } }",
        {"after": sub_cursor},
    )
    assert "not a cursor of this list" in refused.json()["errors"][0]["message"]
