"""removeAdmin (FULL_ADMIN): the removed admin signs in no more (API tokens revoked,
OIDC refused, no new token from the CLI), its customer assignments go, its
reports stay readable by the partner, its report schedules move to a FULL_ADMIN
named in `transferSchedulesTo` (CONFLICT naming the count while it owns some and
none is named), never the last FULL_ADMIN (CONFLICT), one audit event. A removed
admin is gone from the Admins list; what names it still resolves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.auth import UnknownAdminError
from app.config import Settings
from app.domain.api_tokens import create_token_for_email
from app.domain.ids import encode_global_id as gid
from app.domain.report_schedules import run_due_schedules
from app.models.admins import Admin, ApiToken, CustomerAssignment
from app.models.audit import AuditEvent
from app.models.enums import AdminRole, ReportFrequency, ReportTemplateKind, ReportType
from app.models.organization import PartnerOrganization
from app.models.reports import Report, ReportSchedule, ReportTemplate
from app.oidc import OidcVerifier, TokenRefused, viewer_for_oidc
from app.queue import JobQueue
from tests import factories
from tests.factories import ADMIN, FULL, READ_ONLY, SALES, SALES_FULL
from tests.graphql_client import app_client, data, gql
from tests.report_helpers import flush_queue, generate, run_jobs
from tests.report_helpers import template_ids as default_template_ids
from tests.test_mutation_matrix import everything
from tests.test_oidc import AUDIENCE, Issuer, issuer  # noqa: F401 (a fixture)

REMOVE = """mutation($input: RemoveAdminInput!) { removeAdmin(input: $input) {
  removedAdmin { id email role removedAt }
  revokedTokenCount removedAssignmentCount transferredScheduleCount
  schedulesOwner { email }
  userErrors { field message code } } }"""
VIEWER = "{ viewer { email } }"


async def remove(
    client: httpx.AsyncClient, token: str, admin_id: str, heir: str | None = None
) -> dict:
    variables: dict = {"adminId": admin_id}
    if heir is not None:
        variables["transferSchedulesTo"] = heir
    return (await data(client, token, REMOVE, {"input": variables}))["removeAdmin"]


async def schedule_of(org: PartnerOrganization, owner: Admin, name: str) -> ReportSchedule:
    template = await ReportTemplate.create(
        partner=org,
        name=name,
        name_key=name.lower(),
        kind=ReportTemplateKind.CUSTOM,
        report_type=ReportType.DEVICES,
        column_keys=["mac", "customer"],
        created_by=owner,
    )
    return await ReportSchedule.create(
        partner=org,
        template=template,
        frequency=ReportFrequency.DAILY,
        hour_utc=6,
        created_by=owner,
        next_run_at=datetime.now(UTC) + timedelta(days=1),
    )


@pytest.fixture
async def north(db):
    org = await factories.partner("Northwind Partners", "northwind.example")
    return org, await factories.team(org)


async def test_a_removed_admin_signs_in_no_more_loses_its_assignments_and_still_resolves(
    client: httpx.AsyncClient, redis_url: str, north
) -> None:
    await flush_queue(redis_url)
    org, team = north
    full = team[FULL].token
    leaver = await factories.admin(org, ADMIN, email="leaver@northwind.example")
    second_token = "second-token-of-the-leaver"
    from app.auth import hash_token

    await ApiToken.create(admin=leaver.admin, token_hash=hash_token(second_token), label="ci")
    alpha, bravo = await factories.customer(org, "Alpha"), await factories.customer(org, "Bravo")
    await factories.assign(leaver.admin, alpha)
    await factories.assign(leaver.admin, bravo)
    await factories.assign(team[ADMIN].admin, alpha)  # someone else's assignment stays
    # The leaver leaves traces: a tag (an audit event as actor) and a report.
    made = await data(
        client,
        leaver.token,
        'mutation { createTag(input: {name: "Leaver tag"}) { tag { id } userErrors { code } } }',
    )
    assert made["createTag"]["userErrors"] == []
    templates = await default_template_ids(client, leaver.token)
    report = await generate(client, leaver.token, templateId=templates["DEVICES"])
    assert report["userErrors"] == []
    for token in (leaver.token, second_token):
        assert (await data(client, token, VIEWER))["viewer"]["email"] == leaver.admin.email
    admins_before = (await data(client, full, "{ admins(first: 100) { totalCount } }"))["admins"]

    payload = await remove(client, full, gid("Admin", leaver.admin.id))
    assert payload["userErrors"] == []
    removed = payload["removedAdmin"]
    assert removed["email"] == "leaver@northwind.example" and removed["removedAt"] is not None
    assert (payload["revokedTokenCount"], payload["removedAssignmentCount"]) == (2, 2)
    assert (payload["transferredScheduleCount"], payload["schedulesOwner"]) == (0, None)

    # It signs in no more: every token of it is a 401 on the HTTP path.
    for token in (leaver.token, second_token):
        response = await gql(client, token, VIEWER)
        assert response.status_code == 401
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # The tokens are listed as revoked, their owner still resolves.
    tokens = await data(
        client,
        full,
        "{ apiTokens(first: 100) { nodes { active revokedAt owner { email removedAt } } } }",
    )
    its = [t for t in tokens["apiTokens"]["nodes"] if t["owner"]["email"] == leaver.admin.email]
    assert len(its) == 2 and all(not t["active"] and t["revokedAt"] for t in its)
    assert all(t["owner"]["removedAt"] == removed["removedAt"] for t in its)

    # Gone from the Admins list (and its count), from the search, and from the customers.
    listed = await data(client, full, "{ admins(first: 100) { totalCount nodes { email } } }")
    assert listed["admins"]["totalCount"] == admins_before["totalCount"] - 1
    assert leaver.admin.email not in {a["email"] for a in listed["admins"]["nodes"]}
    search = await data(
        client, full, '{ admins(first: 10, filter: {search: "leaver"}) { totalCount } }'
    )
    assert search["admins"]["totalCount"] == 0
    tab = await data(
        client,
        full,
        "query($id: ID!) { customer(id: $id) { partnerAdmins { admin { email } } } }",
        {"id": gid("Customer", alpha.id)},
    )
    assert [a["admin"]["email"] for a in tab["customer"]["partnerAdmins"]] == [
        team[ADMIN].admin.email
    ]
    assert await CustomerAssignment.filter(admin_id=leaver.admin.id).count() == 0

    # Its report stays readable by the partner and names it; so do the audit events.
    reports = await data(
        client,
        team[READ_ONLY].token,
        "{ reports(first: 10) { nodes { id requestedBy { email removedAt } } } }",
    )
    [kept] = reports["reports"]["nodes"]
    assert kept["id"] == report["report"]["id"]
    assert kept["requestedBy"]["email"] == leaver.admin.email and kept["requestedBy"]["removedAt"]
    log = await data(
        client,
        full,
        "{ auditLog(first: 10) { nodes { action targetId summary actor { email } } } }",
    )
    actions = [(e["action"], e["actor"]["email"]) for e in log["auditLog"]["nodes"]]
    assert actions[0] == ("admin.remove", team[FULL].admin.email)
    assert ("tag.create", leaver.admin.email) in actions
    assert ("report.generate", leaver.admin.email) in actions
    event = log["auditLog"]["nodes"][0]
    assert event["targetId"] == gid("Admin", leaver.admin.id)
    assert leaver.admin.email in event["summary"] and "2 API token(s)" in event["summary"]
    assert await AuditEvent.filter(action="admin.remove").count() == 1
    # node(id:) still answers the id an audit event names.
    node = await data(
        client,
        full,
        "query($id: ID!) { node(id: $id) { ... on Admin { email removedAt } } }",
        {"id": gid("Admin", leaver.admin.id)},
    )
    assert node["node"] == {"email": leaver.admin.email, "removedAt": removed["removedAt"]}


async def test_schedules_move_to_the_named_full_admin_or_the_removal_is_a_conflict(
    client: httpx.AsyncClient, redis_url: str, north
) -> None:
    await flush_queue(redis_url)
    org, team = north
    full = team[FULL].token
    leaving = await factories.admin(org, FULL, email="leaving.full@northwind.example")
    daily = await schedule_of(org, leaving.admin, "Daily devices")
    weekly = await schedule_of(org, leaving.admin, "Weekly devices")
    kept = await schedule_of(org, team[FULL].admin, "Not the leaver's")

    before = await everything()
    refused = await remove(client, full, gid("Admin", leaving.admin.id))
    assert refused["removedAdmin"] is None
    assert refused["userErrors"] == [
        {
            "field": ["input", "transferSchedulesTo"],
            "message": "leaving.full@northwind.example owns 2 report schedules: name a "
            "FULL_ADMIN in transferSchedulesTo to keep them running, or delete them first.",
            "code": "CONFLICT",
        }
    ]
    assert await everything() == before
    assert (await data(client, leaving.token, VIEWER))["viewer"]["email"] == leaving.admin.email

    heir = team[FULL].admin
    payload = await remove(client, full, gid("Admin", leaving.admin.id), gid("Admin", heir.id))
    assert payload["userErrors"] == []
    assert payload["transferredScheduleCount"] == 2
    assert payload["schedulesOwner"] == {"email": heir.email}
    schedules = await data(
        client, full, "{ reportSchedules(first: 10) { nodes { id createdBy { email } } } }"
    )
    owners = {s["id"]: s["createdBy"]["email"] for s in schedules["reportSchedules"]["nodes"]}
    assert owners == {gid("ReportSchedule", s.id): heir.email for s in (daily, weekly, kept)}
    # They keep running: the next due run is a report requested by the new owner.
    await ReportSchedule.filter(id=daily.id).update(
        next_run_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    queue = JobQueue(redis_url)
    try:
        [started] = await run_due_schedules(queue, datetime.now(UTC))
    finally:
        await queue.close()
    assert started.schedule_id == daily.id
    report = await data(
        client,
        full,
        "query($id: ID!) { report(id: $id) { status requestedBy { email } } }",
        {"id": gid("Report", started.id)},
    )
    assert report["report"] == {"status": "QUEUED", "requestedBy": {"email": heir.email}}
    [event] = await AuditEvent.filter(action="admin.remove")
    assert "2 report schedule(s) moved to " + heir.email in event.summary


async def test_a_bad_heir_is_refused_and_changes_nothing(client: httpx.AsyncClient, north) -> None:
    org, team = north
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    foreign_full = await factories.admin(contoso, FULL)
    leaving = await factories.admin(org, FULL)
    await schedule_of(org, leaving.admin, "Daily devices")
    gone_full = await factories.admin(org, FULL)
    assert (await remove(client, team[FULL].token, gid("Admin", gone_full.admin.id)))[
        "userErrors"
    ] == []
    cases = {
        "unknown": (gid("Admin", 999_999), "NOT_FOUND"),
        "another partner's FULL_ADMIN": (gid("Admin", foreign_full.admin.id), "NOT_FOUND"),
        "a removed FULL_ADMIN": (gid("Admin", gone_full.admin.id), "NOT_FOUND"),
        "not an admin id": (gid("Customer", 1), "NOT_FOUND"),
        "malformed": ("not-an-id", "NOT_FOUND"),
        "an ADMIN": (gid("Admin", team[ADMIN].admin.id), "INVALID"),
        "a READ_ONLY_ADMIN": (gid("Admin", team[READ_ONLY].admin.id), "INVALID"),
        "the leaver itself": (gid("Admin", leaving.admin.id), "INVALID"),
    }
    before = await everything()
    for case, (heir, code) in cases.items():
        payload = await remove(client, team[FULL].token, gid("Admin", leaving.admin.id), heir)
        assert payload["removedAdmin"] is None, case
        [error] = payload["userErrors"]
        assert (error["field"], error["code"]) == (["input", "transferSchedulesTo"], code), case
    assert await everything() == before
    [error] = (
        await remove(
            client,
            team[FULL].token,
            gid("Admin", leaving.admin.id),
            gid("Admin", team[SALES].admin.id),
        )
    )["userErrors"]
    assert error["message"] == (
        f"Report schedules run under a FULL_ADMIN: {team[SALES].admin.email} is SALES_ADMIN."
    )


async def test_never_the_last_full_admin_and_oneself_only_while_another_remains(
    client: httpx.AsyncClient, db
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    first = await factories.admin(org, FULL)
    other = await factories.admin(org, ADMIN)
    before = await everything()
    [error] = (await remove(client, first.token, gid("Admin", first.admin.id)))["userErrors"]
    assert error == {
        "field": ["input", "adminId"],
        "message": "The last FULL_ADMIN of the organization cannot be removed: make another "
        "admin FULL_ADMIN first.",
        "code": "CONFLICT",
    }
    assert await everything() == before

    second = await factories.admin(org, FULL)
    # Removing oneself is allowed while another FULL_ADMIN remains; the token stops at once.
    payload = await remove(client, first.token, gid("Admin", first.admin.id))
    assert payload["userErrors"] == [] and payload["removedAdmin"]["removedAt"]
    assert (await gql(client, first.token, VIEWER)).status_code == 401
    # A removed FULL_ADMIN no longer counts: the one left can be neither removed nor demoted.
    before = await everything()
    [error] = (await remove(client, second.token, gid("Admin", second.admin.id)))["userErrors"]
    assert error["code"] == "CONFLICT"
    demote = await data(
        client,
        second.token,
        """mutation($input: UpdateAdminRoleInput!) { updateAdminRole(input: $input) {
          admin { role } userErrors { code } } }""",
        {"input": {"adminId": gid("Admin", second.admin.id), "role": "ADMIN"}},
    )
    assert demote["updateAdminRole"]["userErrors"] == [{"code": "CONFLICT"}]
    assert await everything() == before
    # Another admin can still be removed.
    assert (await remove(client, second.token, gid("Admin", other.admin.id)))["userErrors"] == []


async def test_unknown_foreign_and_removed_admins_are_not_found(
    client: httpx.AsyncClient, north
) -> None:
    org, team = north
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    foreign = await factories.admin(contoso, ADMIN)
    removed = await factories.admin(org, ADMIN)
    assert (await remove(client, team[FULL].token, gid("Admin", removed.admin.id)))[
        "userErrors"
    ] == []
    before = await everything()
    for admin_id in (
        gid("Admin", 999_999),
        gid("Admin", foreign.admin.id),
        gid("Admin", removed.admin.id),  # twice: it is gone
        gid("Customer", team[ADMIN].admin.id),  # an id of another type
        "garbage",
    ):
        payload = await remove(client, team[FULL].token, admin_id)
        assert payload["removedAdmin"] is None and payload["revokedTokenCount"] is None
        assert payload["userErrors"] == [
            {"field": ["input", "adminId"], "message": "No such admin.", "code": "NOT_FOUND"}
        ], admin_id
    assert await everything() == before
    # The other partner's admin still signs in.
    assert (await data(client, foreign.token, VIEWER))["viewer"]["email"] == foreign.admin.email


@pytest.mark.parametrize("role", [ADMIN, READ_ONLY, SALES_FULL, SALES])
async def test_only_a_full_admin_removes_admins(
    client: httpx.AsyncClient, north, role: AdminRole
) -> None:
    org, team = north
    target = await factories.admin(org, ADMIN)
    before = await everything()
    payload = await remove(client, team[role].token, gid("Admin", target.admin.id))
    assert payload["removedAdmin"] is None
    assert payload["userErrors"] == [
        {
            "field": None,
            "message": f"Removing admins needs the FULL_ADMIN role (you are {role.value})",
            "code": "FORBIDDEN",
        }
    ]
    assert await everything() == before


async def test_a_removed_admin_is_named_by_no_other_mutation(
    client: httpx.AsyncClient, north
) -> None:
    org, team = north
    full = team[FULL].token
    gone = await factories.admin(org, ADMIN, email="gone@northwind.example")
    customer = await factories.customer(org)
    assert (await remove(client, full, gid("Admin", gone.admin.id)))["userErrors"] == []
    before = await everything()
    gone_id = gid("Admin", gone.admin.id)
    calls = {
        "assignAdminToCustomer": (
            "mutation($input: AssignAdminInput!) { assignAdminToCustomer(input: $input) { userErrors { code field } } }",
            {"adminId": gone_id, "customerId": gid("Customer", customer.id)},
        ),
        "updateAdminRole": (
            "mutation($input: UpdateAdminRoleInput!) { updateAdminRole(input: $input) { userErrors { code field } } }",
            {"adminId": gone_id, "role": "SALES_ADMIN"},
        ),
        "createApiToken": (
            "mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { userErrors { code field } } }",
            {"adminId": gone_id, "label": "again"},
        ),
    }
    for name, (query, variables) in calls.items():
        answer = await data(client, full, query, {"input": variables})
        assert answer[name]["userErrors"] == [
            {"code": "NOT_FOUND", "field": ["input", "adminId"]}
        ], name
    # Its email stays taken (audit events name it): a new admin cannot reuse it.
    created = await data(
        client,
        full,
        """mutation($input: CreateAdminInput!) { createAdmin(input: $input) {
          admin { id } userErrors { code message } } }""",
        {"input": {"email": "gone@northwind.example", "displayName": "Again", "role": "ADMIN"}},
    )
    [error] = created["createAdmin"]["userErrors"]
    assert error["code"] == "CONFLICT" and "removed" in error["message"]
    assert await everything() == before
    # The operator's CLI gives it no new token either.
    with pytest.raises(UnknownAdminError, match="was removed"):
        await create_token_for_email("gone@northwind.example", "cli", None, 30)
    assert await ApiToken.filter(admin_id=gone.admin.id, revoked_at__isnull=True).count() == 0


async def test_oidc_sign_in_of_a_removed_admin_is_refused(
    http_settings: Settings, redis_url: str, issuer: Issuer
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(org, FULL)
    alice = await factories.admin(org, ADMIN, email="alice@northwind.example")
    settings = http_settings.model_copy(
        update={"oidc_issuer": issuer.url, "oidc_audience": AUDIENCE}
    )
    async with app_client(settings, redis_url) as http:
        jwt = issuer.token(email="Alice@Northwind.example")
        assert (await data(http, jwt, VIEWER))["viewer"]["email"] == "alice@northwind.example"
        assert (await remove(http, full.token, gid("Admin", alice.admin.id)))["userErrors"] == []
        response = await gql(http, issuer.token(email="alice@northwind.example"), VIEWER)
        assert response.status_code == 401
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert "the admin with this email was removed" in error["message"]
    verifier = OidcVerifier(issuer.url, AUDIENCE)
    with pytest.raises(TokenRefused, match=r"^the admin with this email was removed$"):
        await viewer_for_oidc(issuer.token(email="alice@northwind.example"), verifier)


async def test_a_pending_setup_refuses_the_removal(client: httpx.AsyncClient, db) -> None:
    org = await factories.partner("Pending Partners", "pending.example", setup_completed=False)
    full = await factories.admin(org, FULL)
    target = await factories.admin(org, ADMIN)
    before = await everything()
    [error] = (await remove(client, full.token, gid("Admin", target.admin.id)))["userErrors"]
    assert error["code"] == "FORBIDDEN" and "setup is pending" in error["message"]
    assert await everything() == before
    assert (await data(client, target.token, VIEWER))["viewer"]["email"] == target.admin.email


async def test_reports_of_a_removed_admin_stay_and_count(client: httpx.AsyncClient, north) -> None:
    """The partner keeps the removed admin's reports: listed, filtered, fetched by id."""
    org, team = north
    leaver = await factories.admin(org, SALES_FULL)
    template = await ReportTemplate.filter(kind=ReportTemplateKind.DEFAULT).first()
    report = await Report.create(
        partner=org, template=template, status="SUCCEEDED", requested_by=leaver.admin
    )
    assert (await remove(client, team[FULL].token, gid("Admin", leaver.admin.id)))[
        "userErrors"
    ] == []
    for role in (FULL, READ_ONLY, SALES_FULL):
        answer = await data(
            client,
            team[role].token,
            "query($id: ID!) { report(id: $id) { id requestedBy { email } } }",
            {"id": gid("Report", report.id)},
        )
        assert answer["report"] == {
            "id": gid("Report", report.id),
            "requestedBy": {"email": leaver.admin.email},
        }, role


async def test_reports_queued_before_a_removal_fail_or_run_as_the_new_schedule_owner(
    client: httpx.AsyncClient, redis_url: str, north, db: Settings
) -> None:
    """A report the removed admin asked for and that had not run yet fails with
    the reason, rather than running in a scope that is gone; a scheduled run
    queued before its owner's removal runs as the schedule's new owner."""
    await flush_queue(redis_url)
    org, team = north
    full = team[FULL].token
    leaver = await factories.admin(org, ADMIN, email="queued.leaver@northwind.example")
    customer = await factories.customer(org, "Alpha")
    await factories.assign(leaver.admin, customer)
    templates = await default_template_ids(client, leaver.token)
    asked = await generate(client, leaver.token, templateId=templates["DEVICES"])
    assert asked["userErrors"] == []

    owner = await factories.admin(org, FULL, email="owner.full@northwind.example")
    schedule = await schedule_of(org, owner.admin, "Nightly devices")
    await ReportSchedule.filter(id=schedule.id).update(
        next_run_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    queue = JobQueue(redis_url)
    try:
        [scheduled] = await run_due_schedules(queue, datetime.now(UTC))
    finally:
        await queue.close()
    heir = team[FULL].admin
    assert (await remove(client, full, gid("Admin", leaver.admin.id)))["userErrors"] == []
    moved = await remove(client, full, gid("Admin", owner.admin.id), gid("Admin", heir.id))
    assert moved["userErrors"] == [] and moved["transferredScheduleCount"] == 1

    await run_jobs(redis_url, db)
    query = "query($id: ID!) { report(id: $id) { status error rowCount } }"
    failed = await data(client, full, query, {"id": asked["report"]["id"]})
    assert failed["report"]["status"] == "FAILED"
    assert failed["report"]["error"] == "The admin who asked for this report was removed."
    ran = await data(client, full, query, {"id": gid("Report", scheduled.id)})
    assert ran["report"]["status"] == "SUCCEEDED", ran
