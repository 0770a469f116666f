"""The audit trail (app/domain/audit.py: "every successful mutation writes one
event"): every mutation of the schema, as every role allowed to run it, writes
exactly one event, of its own action, by the viewer, in the viewer's partner,
naming its target; a refused or no-op mutation writes none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.domain.ids import decode_global_id
from app.domain.ids import encode_global_id as gid
from app.domain.mutations import audit_target
from app.models.admins import Admin, ApiToken, ExternalAdminGrant
from app.models.attention import AttentionWebhook
from app.models.audit import AuditEvent
from app.models.customers import Customer
from app.models.enums import (
    AdminRole,
    ReportFrequency,
    ReportTemplateKind,
    ReportType,
)
from app.models.organization import PartnerOrganization
from app.models.reports import ReportSchedule, ReportTemplate
from app.models.tags import CustomerTag, Tag
from app.models.trials import Trial
from tests import factories
from tests.factories import ADMIN, FULL, READ_ONLY, SALES, SALES_FULL
from tests.graphql_client import data
from tests.report_helpers import flush_queue

EVERY_ROLE = frozenset(AdminRole)


@dataclass
class AuditWorld:
    northwind: PartnerOrganization
    contoso: PartnerOrganization
    team: dict[AdminRole, factories.AdminWithToken]
    customer: Customer  # in the scope of every role, no trial
    with_trial: Customer
    trial: Trial
    tag: Tag
    spare_admin: Admin  # an ADMIN assigned to nothing
    spare_token: ApiToken  # the spare admin's API token
    assigned_admin: Admin  # an ADMIN assigned to `customer`
    template: ReportTemplate  # a CUSTOM template of Northwind
    schedule: ReportSchedule
    spare_template: ReportTemplate  # a CUSTOM template of Northwind no schedule uses
    outsider: Admin  # a Contoso ADMIN, external admin of `with_trial` (not of `customer`)
    webhook: AttentionWebhook  # an attention webhook subscription of Northwind


async def build_audit_world() -> AuditWorld:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    contoso_team = await factories.team(contoso)
    outsider = contoso_team[ADMIN].admin
    await factories.customer(contoso, "Contoso customer")
    today = datetime.now(UTC).date()
    customer = await factories.customer(northwind, "Plain")
    with_trial = await factories.customer(northwind, "With trial")
    trial = await factories.trial(with_trial, today - timedelta(days=5), today + timedelta(days=20))
    for role in (ADMIN, SALES):
        await factories.assign(team[role].admin, customer)
        await factories.assign(team[role].admin, with_trial)
    spare = (await factories.admin(northwind, ADMIN)).admin
    assigned = (await factories.admin(northwind, ADMIN)).admin
    await factories.assign(assigned, customer)
    tag = await Tag.create(partner=northwind, name="Gold", name_key="gold")
    template = await ReportTemplate.create(
        partner=northwind,
        name="Phones by site",
        name_key="phones by site",
        kind=ReportTemplateKind.CUSTOM,
        report_type=ReportType.DEVICES,
        column_keys=["mac"],
        created_by=team[FULL].admin,
    )
    schedule = await ReportSchedule.create(
        partner=northwind,
        template=template,
        frequency=ReportFrequency.DAILY,
        hour_utc=6,
        created_by=team[FULL].admin,
    )
    spare_token = await ApiToken.get(admin_id=spare.id)
    spare_template = await ReportTemplate.create(
        partner=northwind,
        name="Spare",
        name_key="spare",
        kind=ReportTemplateKind.CUSTOM,
        report_type=ReportType.DEVICES,
        column_keys=["mac"],
        created_by=team[FULL].admin,
    )
    await CustomerTag.create(customer=with_trial, tag=tag)  # for removeTagFromCustomers
    await ExternalAdminGrant.create(  # for revokeExternalAdmin
        customer=with_trial,
        admin=outsider,
        granted_by=team[FULL].admin,
        granted_at=datetime.now(UTC),
    )
    webhook = await AttentionWebhook.create(
        partner=northwind,
        url="https://8.8.8.8/hooks",
        topics=["STATUS_GAINED"],
        created_at=datetime.now(UTC),
        updated_at=datetime.now(UTC),
    )
    return AuditWorld(
        northwind, contoso, team, customer, with_trial, trial, tag, spare, spare_token, assigned,
        template, schedule, spare_template, outsider, webhook,
    )  # fmt: skip


@dataclass(frozen=True)
class Case:
    mutation: str
    action: str
    roles: frozenset[AdminRole]
    query: str
    variables: Callable[[AuditWorld], dict]
    # global id the event names, from the world, the payload and the acting admin
    target: Callable[[AuditWorld, dict, Admin], str]


def _in(**fields: object) -> dict:
    return {"input": fields}


CASES = [
    Case(
        "completeOrganizationSetup",
        "organization.setup",
        frozenset({FULL}),
        "mutation($input: CompleteSetupInput!) { completeOrganizationSetup(input: $input) { organization { id } userErrors { code } } }",
        lambda w: _in(acceptTerms=True),
        lambda w, p, a: gid("PartnerOrganization", w.northwind.id),
    ),
    Case(
        "createTag",
        "tag.create",
        frozenset({FULL, ADMIN, SALES_FULL}),
        "mutation($input: CreateTagInput!) { createTag(input: $input) { tag { id } userErrors { code } } }",
        lambda w: _in(name="Fresh"),
        lambda w, p, a: p["tag"]["id"],
    ),
    Case(
        "updateTag",
        "tag.update",
        frozenset({FULL, ADMIN, SALES_FULL}),
        "mutation($input: UpdateTagInput!) { updateTag(input: $input) { tag { id } userErrors { code } } }",
        lambda w: _in(id=gid("Tag", w.tag.id), name="Platinum"),
        lambda w, p, a: gid("Tag", w.tag.id),
    ),
    Case(
        "deleteTag",
        "tag.delete",
        frozenset({FULL, ADMIN, SALES_FULL}),
        "mutation($input: DeleteInput!) { deleteTag(input: $input) { deletedId userErrors { code } } }",
        lambda w: _in(id=gid("Tag", w.tag.id)),
        lambda w, p, a: gid("Tag", w.tag.id),
    ),
    Case(
        "setCustomerTags",
        "customer.tags.set",
        frozenset({FULL, ADMIN, SALES_FULL}),
        "mutation($input: SetCustomerTagsInput!) { setCustomerTags(input: $input) { customer { id } userErrors { code } } }",
        lambda w: _in(customerId=gid("Customer", w.customer.id), tagIds=[gid("Tag", w.tag.id)]),
        lambda w, p, a: gid("Customer", w.customer.id),
    ),
    Case(
        "addTagToCustomers",
        "customer.tags.add",
        frozenset({FULL, ADMIN, SALES_FULL}),
        "mutation($input: TagCustomersInput!) { addTagToCustomers(input: $input) { changedCount userErrors { code } } }",
        lambda w: _in(tagId=gid("Tag", w.tag.id), customerIds=[gid("Customer", w.customer.id)]),
        lambda w, p, a: gid("Tag", w.tag.id),
    ),
    Case(
        "removeTagFromCustomers",
        "customer.tags.remove",
        frozenset({FULL, ADMIN, SALES_FULL}),
        "mutation($input: TagCustomersInput!) { removeTagFromCustomers(input: $input) { changedCount userErrors { code } } }",
        lambda w: _in(tagId=gid("Tag", w.tag.id), filter={"tagIds": [gid("Tag", w.tag.id)]}),
        lambda w, p, a: gid("Tag", w.tag.id),
    ),
    Case(
        "startTrial",
        "trial.start",
        frozenset({FULL, ADMIN, SALES_FULL, SALES}),
        "mutation($input: StartTrialInput!) { startTrial(input: $input) { trial { id } userErrors { code } } }",
        lambda w: _in(
            customerId=gid("Customer", w.customer.id),
            products=[{"product": "CALLING", "licenses": 10}],
            durationDays=30,
        ),
        lambda w, p, a: p["trial"]["id"],
    ),
    Case(
        "extendTrial",
        "trial.extend",
        frozenset({FULL, ADMIN, SALES_FULL, SALES}),
        "mutation($input: ExtendTrialInput!) { extendTrial(input: $input) { trial { id } userErrors { code } } }",
        lambda w: _in(trialId=gid("Trial", w.trial.id), days=5),
        lambda w, p, a: gid("Trial", w.trial.id),
    ),
    Case(
        "cancelTrial",
        "trial.cancel",
        frozenset({FULL, ADMIN, SALES_FULL, SALES}),
        "mutation($input: CancelTrialInput!) { cancelTrial(input: $input) { trial { id } userErrors { code } } }",
        lambda w: _in(trialId=gid("Trial", w.trial.id)),
        lambda w, p, a: gid("Trial", w.trial.id),
    ),
    Case(
        "assignAdminToCustomer",
        "admin.assign",
        frozenset({FULL}),
        "mutation($input: AssignAdminInput!) { assignAdminToCustomer(input: $input) { assignment { role } userErrors { code } } }",
        lambda w: _in(adminId=gid("Admin", w.spare_admin.id), customerId=gid("Customer", w.customer.id)),
        lambda w, p, a: gid("Customer", w.customer.id),
    ),
    Case(
        "unassignAdminFromCustomer",
        "admin.unassign",
        frozenset({FULL}),
        "mutation($input: AssignAdminInput!) { unassignAdminFromCustomer(input: $input) { deletedId userErrors { code } } }",
        lambda w: _in(adminId=gid("Admin", w.assigned_admin.id), customerId=gid("Customer", w.customer.id)),
        lambda w, p, a: gid("Customer", w.customer.id),
    ),
    Case(
        "grantExternalAdmin",
        "customer.external_admin.grant",
        frozenset({FULL}),
        "mutation($input: ExternalAdminInput!) { grantExternalAdmin(input: $input) { customer { id } userErrors { code } } }",
        lambda w: _in(customerId=gid("Customer", w.customer.id), adminEmail=w.outsider.email),
        lambda w, p, a: gid("Customer", w.customer.id),
    ),
    Case(
        "revokeExternalAdmin",
        "customer.external_admin.revoke",
        frozenset({FULL}),
        "mutation($input: ExternalAdminInput!) { revokeExternalAdmin(input: $input) { customer { id } userErrors { code } } }",
        lambda w: _in(customerId=gid("Customer", w.with_trial.id), adminEmail=w.outsider.email),
        lambda w, p, a: gid("Customer", w.with_trial.id),
    ),
    Case(
        "createAdmin",
        "admin.create",
        frozenset({FULL}),
        "mutation($input: CreateAdminInput!) { createAdmin(input: $input) { admin { id } userErrors { code } } }",
        lambda w: _in(email="new.admin@northwind.example", displayName="New Admin", role="ADMIN"),
        lambda w, p, a: p["admin"]["id"],
    ),
    Case(
        "updateAdminRole",
        "admin.role",
        frozenset({FULL}),
        "mutation($input: UpdateAdminRoleInput!) { updateAdminRole(input: $input) { admin { id } userErrors { code } } }",
        lambda w: _in(adminId=gid("Admin", w.spare_admin.id), role="SALES_ADMIN"),
        lambda w, p, a: gid("Admin", w.spare_admin.id),
    ),
    Case(
        "removeAdmin",
        "admin.remove",
        frozenset({FULL}),
        "mutation($input: RemoveAdminInput!) { removeAdmin(input: $input) { removedAdmin { id } userErrors { code } } }",
        lambda w: _in(adminId=gid("Admin", w.assigned_admin.id)),
        lambda w, p, a: gid("Admin", w.assigned_admin.id),
    ),
    Case(
        "createReportTemplate",
        "report_template.create",
        EVERY_ROLE - {READ_ONLY},
        "mutation($input: CreateReportTemplateInput!) { createReportTemplate(input: $input) { template { id } userErrors { code } } }",
        lambda w: _in(name="Macs only", reportType="DEVICES", columnKeys=["mac"]),
        lambda w, p, a: p["template"]["id"],
    ),
    Case(
        "updateReportTemplate",
        "report_template.update",
        EVERY_ROLE - {READ_ONLY},
        "mutation($input: UpdateReportTemplateInput!) { updateReportTemplate(input: $input) { template { id } userErrors { code } } }",
        lambda w: _in(templateId=gid("ReportTemplate", w.template.id), name="Phones by room"),
        lambda w, p, a: gid("ReportTemplate", w.template.id),
    ),
    Case(
        "deleteReportTemplate",
        "report_template.delete",
        EVERY_ROLE - {READ_ONLY},
        "mutation($input: DeleteReportTemplateInput!) { deleteReportTemplate(input: $input) { deletedId userErrors { code } } }",
        lambda w: _in(templateId=gid("ReportTemplate", w.spare_template.id)),
        lambda w, p, a: gid("ReportTemplate", w.spare_template.id),
    ),
    Case(
        "generateReport",
        "report.generate",
        EVERY_ROLE,
        "mutation($input: GenerateReportInput!) { generateReport(input: $input) { report { id } userErrors { code } } }",
        lambda w: _in(templateId=gid("ReportTemplate", w.template.id)),
        lambda w, p, a: p["report"]["id"],
    ),
    Case(
        "createReportSchedule",
        "report_schedule.create",
        frozenset({FULL}),
        "mutation($input: CreateReportScheduleInput!) { createReportSchedule(input: $input) { schedule { id } userErrors { code } } }",
        lambda w: _in(templateId=gid("ReportTemplate", w.template.id), frequency="WEEKLY", dayOfWeek=1, hourUtc=5),
        lambda w, p, a: p["schedule"]["id"],
    ),
    Case(
        "updateReportSchedule",
        "report_schedule.update",
        frozenset({FULL}),
        "mutation($input: UpdateReportScheduleInput!) { updateReportSchedule(input: $input) { schedule { id } userErrors { code } } }",
        lambda w: _in(id=gid("ReportSchedule", w.schedule.id), hourUtc=7),
        lambda w, p, a: gid("ReportSchedule", w.schedule.id),
    ),
    Case(
        "deleteReportSchedule",
        "report_schedule.delete",
        frozenset({FULL}),
        "mutation($input: DeleteInput!) { deleteReportSchedule(input: $input) { deletedId userErrors { code } } }",
        lambda w: _in(id=gid("ReportSchedule", w.schedule.id)),
        lambda w, p, a: gid("ReportSchedule", w.schedule.id),
    ),
    Case(
        "createApiToken",
        "api_token.create",
        frozenset({FULL}),
        "mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { apiToken { id } userErrors { code } } }",
        lambda w: _in(label="CI", adminId=gid("Admin", w.spare_admin.id)),
        lambda w, p, a: p["apiToken"]["id"],
    ),
    Case(
        "revokeApiToken",
        "api_token.revoke",
        frozenset({FULL}),
        "mutation($input: RevokeApiTokenInput!) { revokeApiToken(input: $input) { apiToken { id } userErrors { code } } }",
        lambda w: _in(id=gid("ApiToken", w.spare_token.id)),
        lambda w, p, a: gid("ApiToken", w.spare_token.id),
    ),
    Case(
        "createWebhookSubscription",
        "webhook_subscription.create",
        frozenset({FULL}),
        "mutation($input: CreateWebhookSubscriptionInput!) { createWebhookSubscription(input: $input) { subscription { id } userErrors { code } } }",
        lambda w: _in(url="https://8.8.4.4/new", topics=["TRIAL_ENDING"]),
        lambda w, p, a: p["subscription"]["id"],
    ),
    Case(
        "updateWebhookSubscription",
        "webhook_subscription.update",
        frozenset({FULL}),
        "mutation($input: UpdateWebhookSubscriptionInput!) { updateWebhookSubscription(input: $input) { subscription { id } userErrors { code } } }",
        lambda w: _in(id=gid("WebhookSubscription", w.webhook.id), topics=["TRIAL_ENDING"]),
        lambda w, p, a: gid("WebhookSubscription", w.webhook.id),
    ),
    Case(
        "deleteWebhookSubscription",
        "webhook_subscription.delete",
        frozenset({FULL}),
        "mutation($input: DeleteInput!) { deleteWebhookSubscription(input: $input) { deletedId userErrors { code } } }",
        lambda w: _in(id=gid("WebhookSubscription", w.webhook.id)),
        lambda w, p, a: gid("WebhookSubscription", w.webhook.id),
    ),
    Case(
        "updateNotificationPreferences",
        "notification_preferences.update",
        frozenset(AdminRole),
        "mutation($input: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $input) { notificationPreferences { dailyDigest } userErrors { code } } }",
        lambda w: _in(dailyDigest=True),
        lambda w, p, a: gid("Admin", a.id),
    ),
]  # fmt: skip
BY_NAME = {case.mutation: case for case in CASES}
RUNS = [(case, role) for case in CASES for role in AdminRole if role in case.roles]


async def test_every_mutation_of_the_schema_has_its_audit_case(
    client: httpx.AsyncClient, db
) -> None:
    """A new mutation fails here until it has a case above (and so an audit check)."""
    org = await factories.partner("Northwind Partners", "northwind.example")
    full = await factories.admin(org, FULL)
    answer = await data(client, full.token, "{ __schema { mutationType { fields { name } } } }")
    names = {f["name"] for f in answer["__schema"]["mutationType"]["fields"]}
    assert names == set(BY_NAME)
    assert len({case.action for case in CASES}) == len(CASES)  # each its own action


async def _events_after(last_id: int) -> list[AuditEvent]:
    return await AuditEvent.filter(id__gt=last_id).order_by("id")


async def _last_event_id() -> int:
    last = await AuditEvent.all().order_by("-id").first()
    return last.id if last else 0


@pytest.mark.parametrize(
    ("case", "role"), RUNS, ids=[f"{case.mutation}-{role.value}" for case, role in RUNS]
)
async def test_a_successful_mutation_writes_exactly_one_event_of_its_own_action(
    client: httpx.AsyncClient, db, redis_url: str, case: Case, role: AdminRole
) -> None:
    await flush_queue(redis_url)
    w = await build_audit_world()
    if case.mutation == "completeOrganizationSetup":
        await PartnerOrganization.filter(id=w.northwind.id).update(terms_accepted_at=None)
    viewer = w.team[role]
    last = await _last_event_id()
    answer = await data(client, viewer.token, case.query, case.variables(w))
    payload = answer[case.mutation]
    assert payload["userErrors"] == [], payload
    [event] = await _events_after(last)
    assert event.action == case.action
    assert event.actor_id == viewer.admin.id
    assert event.partner_id == w.northwind.id
    # Stored in domain terms; the audit log shows the target's global id.
    target = case.target(w, payload, viewer.admin)
    decoded = decode_global_id(target)
    assert decoded is not None
    assert event.target_id == audit_target(*decoded)
    assert event.summary
    log = await data(client, w.team[FULL].token, "{ auditLog(first: 1) { nodes { targetId } } }")
    assert log["auditLog"]["nodes"] == [{"targetId": target}]


@pytest.mark.parametrize("case", CASES, ids=[case.mutation for case in CASES])
async def test_a_refused_mutation_writes_no_event(
    client: httpx.AsyncClient, db, redis_url: str, case: Case
) -> None:
    """Refused for its role where some role may not run it, else for setup pending
    or a conflict: no event either way."""
    await flush_queue(redis_url)
    w = await build_audit_world()
    forbidden = [role for role in AdminRole if role not in case.roles]
    if case.mutation == "completeOrganizationSetup":
        tokens = [w.team[role].token for role in forbidden]
        tokens.append(w.team[FULL].token)  # already completed: a CONFLICT
    elif forbidden:
        tokens = [w.team[role].token for role in forbidden]
    else:  # every role may: refused while the setup is pending
        await PartnerOrganization.filter(id=w.northwind.id).update(terms_accepted_at=None)
        tokens = [w.team[role].token for role in AdminRole]
    last = await _last_event_id()
    for token in tokens:
        answer = await data(client, token, case.query, case.variables(w))
        assert answer[case.mutation]["userErrors"], answer
    assert await _events_after(last) == []


async def test_a_role_change_to_the_same_role_changes_nothing_and_writes_no_event(
    client: httpx.AsyncClient, db
) -> None:
    """updateAdminRole to the role the admin already has: a no-op, answered with
    the admin, with nothing to audit."""
    w = await build_audit_world()
    case = BY_NAME["updateAdminRole"]
    query = case.query.replace("admin { id }", "admin { id role email }")
    last = await _last_event_id()
    for target in (w.spare_admin, w.team[SALES].admin, w.team[FULL].admin):
        variables = _in(adminId=gid("Admin", target.id), role=target.role)
        payload = (await data(client, w.team[FULL].token, query, variables))["updateAdminRole"]
        assert payload == {
            "admin": {"id": gid("Admin", target.id), "role": target.role, "email": target.email},
            "userErrors": [],
        }
        assert (await Admin.get(id=target.id)).role == target.role
    assert await _events_after(last) == []
    # A real change still writes its one event.
    variables = _in(adminId=gid("Admin", w.spare_admin.id), role="SALES_ADMIN")
    await data(client, w.team[FULL].token, query, variables)
    [event] = await _events_after(last)
    assert event.action == "admin.role"
    assert event.target_id == audit_target("Admin", w.spare_admin.id)
