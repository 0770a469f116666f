"""Every mutation as each of the five roles, against a target in the viewer's
scope, one outside it, and another partner's: the answer (success, FORBIDDEN
or NOT_FOUND, per the SPEC.md role table) and, when refused, that nothing
changed at all. Every mutation on a customer also runs against another
partner's customer that the viewer sees through an external-admin grant
(`granted`): read-only, so refused exactly as any foreign customer. After
each, every customer's kept list columns equal a recomputation from its rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from tortoise import Tortoise

from app.db import fetch_all
from app.domain.ids import encode_global_id as gid
from app.models.admins import Admin, CustomerAssignment, ExternalAdminGrant
from app.models.attention import AttentionWebhook, NotificationPreference
from app.models.customers import Customer
from app.models.enums import AdminRole, ReportTemplateKind, ReportType
from app.models.reports import ReportTemplate
from app.models.tags import CustomerTag, Tag
from app.models.trials import Trial
from tests import factories
from tests.factories import ADMIN, FULL, SALES, SALES_FULL
from tests.graphql_client import data
from tests.kept_columns import assert_kept_columns_exact

TAG_ROLES = {FULL, ADMIN, SALES_FULL}
TRIAL_ROLES = {FULL, ADMIN, SALES_FULL, SALES}
TEMPLATE_ROLES = {FULL, ADMIN, SALES_FULL, SALES}  # every role but READ_ONLY_ADMIN
MANAGER_ROLES = {FULL}
TARGETS = ("in_scope", "out_of_scope", "foreign", "granted")


@dataclass
class Matrix:
    team: dict[AdminRole, factories.AdminWithToken]
    # per target: a customer without trial (tags, start), one with an ongoing trial
    plain: dict[str, Customer]
    with_trial: dict[str, Customer]
    trials: dict[str, Trial]
    tags: dict[str, Tag]
    spare_admin: dict[str, Admin]  # an ADMIN-role admin assigned to nothing
    assigned_admin: dict[str, Admin]  # an ADMIN-role admin assigned to plain[target]
    templates: dict[str, ReportTemplate]  # a CUSTOM template of the target's partner
    outsider: Admin  # a Contoso ADMIN: external admin of with_trial[t] for Northwind's targets
    webhooks: dict[str, AttentionWebhook]  # an attention webhook of the target's partner


async def _custom_template(owner: object, name: str) -> ReportTemplate:
    return await ReportTemplate.create(
        partner=owner,
        name=name,
        name_key=name.lower(),
        kind=ReportTemplateKind.CUSTOM,
        report_type=ReportType.DEVICES,
        column_keys=["mac", "customer"],
    )


async def _carry(customer: Customer, tag: Tag) -> None:
    await CustomerTag.create(customer=customer, tag=tag)


async def build_matrix() -> Matrix:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    today = datetime.now(UTC).date()
    owner = {
        "in_scope": northwind,
        "out_of_scope": northwind,
        "foreign": contoso,
        "granted": contoso,
    }
    plain = {t: await factories.customer(owner[t], f"{t} plain") for t in TARGETS}
    with_trial = {t: await factories.customer(owner[t], f"{t} with trial") for t in TARGETS}
    trials = {
        t: await factories.trial(
            with_trial[t], today - timedelta(days=5), today + timedelta(days=25)
        )
        for t in TARGETS
    }
    # ADMIN and SALES_ADMIN reach the in-scope customers only.
    for role in (ADMIN, SALES):
        await factories.assign(team[role].admin, plain["in_scope"])
        await factories.assign(team[role].admin, with_trial["in_scope"])
    tags = {
        t: await Tag.create(partner=owner[t], name=f"{t} tag", name_key=f"{t} tag") for t in TARGETS
    }
    spare, assigned = {}, {}
    for t in TARGETS:
        spare[t] = (await factories.admin(owner[t], ADMIN)).admin
        assigned[t] = (await factories.admin(owner[t], ADMIN)).admin
        await CustomerAssignment.create(admin=assigned[t], customer=plain[t])
        # removeTagFromCustomers takes the target's tag off the customer with a trial
        await _carry(with_trial[t], tags[t])
    templates = {t: await _custom_template(owner[t], f"{t} template") for t in TARGETS}
    # Contoso's FULL_ADMIN made every Northwind admin an external admin of its
    # `granted` customers; Northwind's made a Contoso admin one of its with_trial ones.
    contoso_full = await factories.admin(contoso, FULL)
    outsider = (await factories.admin(contoso, ADMIN)).admin
    now = datetime.now(UTC)
    for member in team.values():
        for customer in (plain["granted"], with_trial["granted"]):
            await ExternalAdminGrant.create(
                customer=customer, admin=member.admin, granted_by=contoso_full.admin, granted_at=now
            )
    for t in ("in_scope", "out_of_scope"):
        await ExternalAdminGrant.create(
            customer=with_trial[t], admin=outsider, granted_by=team[FULL].admin, granted_at=now
        )
    webhooks = {
        t: await AttentionWebhook.create(
            partner=owner[t],
            url=f"https://8.8.8.8/{t}",
            topics=["STATUS_GAINED"],
            created_at=now,
            updated_at=now,
        )
        for t in TARGETS
    }
    return Matrix(
        team, plain, with_trial, trials, tags, spare, assigned, templates, outsider, webhooks
    )


@dataclass(frozen=True)
class Mutation:
    name: str
    roles: set[AdminRole]
    scoped: bool  # does the viewer's customer scope apply to the target?
    query: str
    variables: Callable[[Matrix, str], dict]
    changed: Callable[[Matrix, str], object]  # async check that the change happened


def _input(**fields: object) -> dict:
    return {"input": fields}


async def _tag_named(name: str) -> bool:
    return await Tag.filter(name=name).exists()


MUTATIONS = [
    Mutation(
        "createTag",
        TAG_ROLES,
        False,
        "mutation($input: CreateTagInput!) { createTag(input: $input) { tag { name } userErrors { code } } }",
        lambda m, t: _input(name="Fresh tag"),
        lambda m, t: _tag_named("Fresh tag"),
    ),
    Mutation(
        "updateTag",
        TAG_ROLES,
        False,
        "mutation($input: UpdateTagInput!) { updateTag(input: $input) { tag { name } userErrors { code } } }",
        lambda m, t: _input(id=gid("Tag", m.tags[t].id), name="Renamed"),
        lambda m, t: _tag_named("Renamed"),
    ),
    Mutation(
        "deleteTag",
        TAG_ROLES,
        False,
        "mutation($input: DeleteInput!) { deleteTag(input: $input) { deletedId userErrors { code } } }",
        lambda m, t: _input(id=gid("Tag", m.tags[t].id)),
        lambda m, t: _missing(Tag, m.tags[t].id),
    ),
    Mutation(
        "setCustomerTags",
        TAG_ROLES,
        True,
        "mutation($input: SetCustomerTagsInput!) { setCustomerTags(input: $input) { customer { name } userErrors { code } } }",
        lambda m, t: _input(
            customerId=gid("Customer", m.plain[t].id), tagIds=[gid("Tag", m.tags["in_scope"].id)]
        ),
        lambda m, t: CustomerTag.filter(customer_id=m.plain[t].id).exists(),
    ),
    Mutation(
        "addTagToCustomers",
        TAG_ROLES,
        True,
        "mutation($input: TagCustomersInput!) { addTagToCustomers(input: $input) { changedCount userErrors { code } } }",
        lambda m, t: _input(
            tagId=gid("Tag", m.tags["in_scope"].id), customerIds=[gid("Customer", m.plain[t].id)]
        ),
        lambda m, t: CustomerTag.filter(
            customer_id=m.plain[t].id, tag_id=m.tags["in_scope"].id
        ).exists(),
    ),
    Mutation(
        "removeTagFromCustomers",
        TAG_ROLES,
        True,
        "mutation($input: TagCustomersInput!) { removeTagFromCustomers(input: $input) { changedCount userErrors { code } } }",
        lambda m, t: _input(
            tagId=gid("Tag", m.tags[t].id), customerIds=[gid("Customer", m.with_trial[t].id)]
        ),
        lambda m, t: _none(CustomerTag.filter(customer_id=m.with_trial[t].id)),
    ),
    Mutation(
        "updateReportTemplate",
        TEMPLATE_ROLES,
        False,
        "mutation($input: UpdateReportTemplateInput!) { updateReportTemplate(input: $input) { template { name } userErrors { code } } }",
        lambda m, t: _input(
            templateId=gid("ReportTemplate", m.templates[t].id),
            name="Renamed template",
            columnKeys=["customer"],
        ),
        lambda m, t: _renamed(m.templates[t].id),
    ),
    Mutation(
        "deleteReportTemplate",
        TEMPLATE_ROLES,
        False,
        "mutation($input: DeleteReportTemplateInput!) { deleteReportTemplate(input: $input) { deletedId userErrors { code } } }",
        lambda m, t: _input(templateId=gid("ReportTemplate", m.templates[t].id)),
        lambda m, t: ReportTemplate.filter(id=m.templates[t].id, deleted_at__isnull=False).exists(),
    ),
    Mutation(
        "startTrial",
        TRIAL_ROLES,
        True,
        "mutation($input: StartTrialInput!) { startTrial(input: $input) { trial { trialId } userErrors { code } } }",
        lambda m, t: _input(
            customerId=gid("Customer", m.plain[t].id),
            products=[{"product": "CALLING", "licenses": 10}],
            durationDays=30,
        ),
        lambda m, t: Trial.filter(customer_id=m.plain[t].id).exists(),
    ),
    Mutation(
        "extendTrial",
        TRIAL_ROLES,
        True,
        "mutation($input: ExtendTrialInput!) { extendTrial(input: $input) { trial { endDate } userErrors { code } } }",
        lambda m, t: _input(trialId=gid("Trial", m.trials[t].id), days=5),
        lambda m, t: Trial.filter(
            id=m.trials[t].id, end_date=m.trials[t].end_date + timedelta(days=5)
        ).exists(),
    ),
    Mutation(
        "cancelTrial",
        TRIAL_ROLES,
        True,
        "mutation($input: CancelTrialInput!) { cancelTrial(input: $input) { trial { status } userErrors { code } } }",
        lambda m, t: _input(trialId=gid("Trial", m.trials[t].id)),
        lambda m, t: Trial.filter(id=m.trials[t].id, status="CANCELLED").exists(),
    ),
    Mutation(
        "assignAdminToCustomer",
        MANAGER_ROLES,
        True,
        "mutation($input: AssignAdminInput!) { assignAdminToCustomer(input: $input) { assignment { role } userErrors { code } } }",
        lambda m, t: _input(
            adminId=gid("Admin", m.spare_admin[t].id), customerId=gid("Customer", m.plain[t].id)
        ),
        lambda m, t: CustomerAssignment.filter(admin_id=m.spare_admin[t].id).exists(),
    ),
    Mutation(
        "unassignAdminFromCustomer",
        MANAGER_ROLES,
        True,
        "mutation($input: AssignAdminInput!) { unassignAdminFromCustomer(input: $input) { deletedId userErrors { code } } }",
        lambda m, t: _input(
            adminId=gid("Admin", m.assigned_admin[t].id), customerId=gid("Customer", m.plain[t].id)
        ),
        lambda m, t: _none(CustomerAssignment.filter(admin_id=m.assigned_admin[t].id)),
    ),
    Mutation(
        "grantExternalAdmin",
        MANAGER_ROLES,
        True,
        "mutation($input: ExternalAdminInput!) { grantExternalAdmin(input: $input) { customer { name } userErrors { code } } }",
        lambda m, t: _input(customerId=gid("Customer", m.plain[t].id), adminEmail=m.outsider.email),
        lambda m, t: ExternalAdminGrant.filter(
            customer_id=m.plain[t].id, admin_id=m.outsider.id
        ).exists(),
    ),
    Mutation(
        "revokeExternalAdmin",
        MANAGER_ROLES,
        True,
        "mutation($input: ExternalAdminInput!) { revokeExternalAdmin(input: $input) { customer { name } userErrors { code } } }",
        lambda m, t: _input(
            customerId=gid("Customer", m.with_trial[t].id), adminEmail=m.outsider.email
        ),
        lambda m, t: _none(
            ExternalAdminGrant.filter(customer_id=m.with_trial[t].id, admin_id=m.outsider.id)
        ),
    ),
    Mutation(
        "createAdmin",
        MANAGER_ROLES,
        False,
        "mutation($input: CreateAdminInput!) { createAdmin(input: $input) { admin { email } userErrors { code } } }",
        lambda m, t: _input(
            email="new.admin@northwind.example", displayName="New Admin", role="ADMIN"
        ),
        lambda m, t: Admin.filter(email="new.admin@northwind.example").exists(),
    ),
    Mutation(
        "updateAdminRole",
        MANAGER_ROLES,
        False,
        "mutation($input: UpdateAdminRoleInput!) { updateAdminRole(input: $input) { admin { role } userErrors { code } } }",
        lambda m, t: _input(adminId=gid("Admin", m.spare_admin[t].id), role="SALES_ADMIN"),
        lambda m, t: Admin.filter(id=m.spare_admin[t].id, role="SALES_ADMIN").exists(),
    ),
    Mutation(
        "removeAdmin",
        MANAGER_ROLES,
        False,
        "mutation($input: RemoveAdminInput!) { removeAdmin(input: $input) { removedAdmin { removedAt } revokedTokenCount userErrors { code } } }",
        lambda m, t: _input(adminId=gid("Admin", m.spare_admin[t].id)),
        lambda m, t: Admin.filter(id=m.spare_admin[t].id, removed_at__isnull=False).exists(),
    ),
    Mutation(
        "createWebhookSubscription",
        MANAGER_ROLES,
        False,
        "mutation($input: CreateWebhookSubscriptionInput!) { createWebhookSubscription(input: $input) { subscription { url } userErrors { code } } }",
        lambda m, t: _input(url="https://8.8.4.4/new", topics=["TRIAL_ENDING"]),
        lambda m, t: AttentionWebhook.filter(url="https://8.8.4.4/new").exists(),
    ),
    Mutation(
        "updateWebhookSubscription",
        MANAGER_ROLES,
        False,
        "mutation($input: UpdateWebhookSubscriptionInput!) { updateWebhookSubscription(input: $input) { subscription { url } userErrors { code } } }",
        lambda m, t: _input(
            id=gid("WebhookSubscription", m.webhooks[t].id), url="https://8.8.4.4/u"
        ),
        lambda m, t: AttentionWebhook.filter(id=m.webhooks[t].id, url="https://8.8.4.4/u").exists(),
    ),
    Mutation(
        "deleteWebhookSubscription",
        MANAGER_ROLES,
        False,
        "mutation($input: DeleteInput!) { deleteWebhookSubscription(input: $input) { deletedId userErrors { code } } }",
        lambda m, t: _input(id=gid("WebhookSubscription", m.webhooks[t].id)),
        lambda m, t: _missing(AttentionWebhook, m.webhooks[t].id),
    ),
    Mutation(
        "updateNotificationPreferences",
        set(AdminRole),
        False,
        "mutation($input: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $input) { notificationPreferences { dailyDigest } userErrors { code } } }",
        lambda m, t: _input(dailyDigest=True, topics=["STATUS_GAINED"]),
        lambda m, t: NotificationPreference.filter(daily_digest=True).exists(),
    ),
]


# The audit action each mutation writes (one event, of its own action).
ACTIONS = {
    "createTag": "tag.create",
    "updateTag": "tag.update",
    "deleteTag": "tag.delete",
    "setCustomerTags": "customer.tags.set",
    "addTagToCustomers": "customer.tags.add",
    "removeTagFromCustomers": "customer.tags.remove",
    "updateReportTemplate": "report_template.update",
    "deleteReportTemplate": "report_template.delete",
    "startTrial": "trial.start",
    "extendTrial": "trial.extend",
    "cancelTrial": "trial.cancel",
    "assignAdminToCustomer": "admin.assign",
    "unassignAdminFromCustomer": "admin.unassign",
    "grantExternalAdmin": "customer.external_admin.grant",
    "revokeExternalAdmin": "customer.external_admin.revoke",
    "createAdmin": "admin.create",
    "updateAdminRole": "admin.role",
    "removeAdmin": "admin.remove",
    "createWebhookSubscription": "webhook_subscription.create",
    "updateWebhookSubscription": "webhook_subscription.update",
    "deleteWebhookSubscription": "webhook_subscription.delete",
    "updateNotificationPreferences": "notification_preferences.update",
}


async def _renamed(template_id: int) -> bool:
    template = await ReportTemplate.get(id=template_id)
    return (template.name, template.column_keys) == ("Renamed template", ["customer"])


async def _missing(model: type, pk: int) -> bool:
    return not await model.filter(id=pk).exists()


async def _none(query: object) -> bool:
    return not await query.exists()  # type: ignore[attr-defined]


async def everything() -> dict[str, list[dict]]:
    """Every row of every table, to show that a refused mutation changed nothing."""
    tables = sorted(m._meta.db_table for m in Tortoise.apps["models"].values())
    rows = {t: await fetch_all(f'SELECT * FROM "{t}" ORDER BY id') for t in tables}
    for token in rows["api_token"]:
        token.pop("last_used_at")  # every request may note when its token was used
    return rows


def expected_outcome(mutation: Mutation, role: AdminRole, target: str) -> str:
    if role not in mutation.roles:
        return "FORBIDDEN"
    if target in ("foreign", "granted"):  # a granted customer is read-only
        return "NOT_FOUND"
    if mutation.scoped and target == "out_of_scope" and role in (ADMIN, SALES):
        return "NOT_FOUND"
    return "OK"


# Mutations with no target to vary.
TARGETLESS = (
    "createTag",
    "createAdmin",
    "createWebhookSubscription",
    "updateNotificationPreferences",
)

CASES = [
    (mutation, role, target)
    for mutation in MUTATIONS
    for role in AdminRole
    for target in TARGETS
    # creating a tag or an admin has no target to vary
    if not (mutation.name in TARGETLESS and target != "in_scope")
    # a grant reaches customers only: the mutations on one vary over it
    and not (target == "granted" and not mutation.scoped)
]


@pytest.mark.parametrize(
    ("mutation", "role", "target"),
    CASES,
    ids=[f"{m.name}-{r.value}-{t}" for m, r, t in CASES],
)
async def test_mutation_obeys_the_role_table(
    client: httpx.AsyncClient, db, mutation: Mutation, role: AdminRole, target: str
) -> None:
    matrix = await build_matrix()
    before = await everything()
    answer = await data(
        client, matrix.team[role].token, mutation.query, mutation.variables(matrix, target)
    )
    payload = answer[mutation.name]
    errors = [e["code"] for e in payload["userErrors"]]
    expected = expected_outcome(mutation, role, target)
    if expected == "OK":
        assert errors == [], payload
        assert await mutation.changed(matrix, target)
        after = await everything()
        new_events = after["audit_event"][len(before["audit_event"]) :]
        assert len(new_events) == 1, new_events
        assert new_events[0]["actor_id"] == matrix.team[role].admin.id
        assert new_events[0]["action"] == ACTIONS[mutation.name]
        assert new_events[0]["partner_id"] == matrix.team[role].admin.partner_id
    else:
        assert errors == [expected], payload
        assert all(v is None for k, v in payload.items() if k != "userErrors")
        assert await everything() == before
    # Whatever the mutation did, every customer's kept list columns are still
    # those its rows give (recomputed in plain Python).
    assert await assert_kept_columns_exact(datetime.now(UTC).date()) == 8


async def test_forbidden_answers_name_the_roles_needed(client: httpx.AsyncClient, db) -> None:
    matrix = await build_matrix()
    mutation = next(m for m in MUTATIONS if m.name == "createAdmin")
    query = mutation.query.replace("userErrors { code }", "userErrors { code message field }")
    answer = await data(
        client, matrix.team[SALES_FULL].token, query, mutation.variables(matrix, "in_scope")
    )
    [error] = answer["createAdmin"]["userErrors"]
    assert (
        error["message"] == "Creating admins needs the FULL_ADMIN role (you are SALES_FULL_ADMIN)"
    )


async def test_until_setup_is_completed_every_other_mutation_is_refused(
    client: httpx.AsyncClient, db
) -> None:
    pending = await factories.partner("Pending Partners", "pending.example", setup_completed=False)
    northwind_like = await factories.partner("Other Partners", "other.example")
    full = await factories.admin(pending, FULL)
    customer = await factories.customer(pending)
    tag = await Tag.create(partner=pending, name="T", name_key="t")
    await _carry(customer, tag)
    matrix_like = Matrix(
        team={FULL: full},
        plain={"in_scope": customer},
        with_trial={"in_scope": customer},
        trials={
            "in_scope": await factories.trial(
                customer, datetime.now(UTC).date(), datetime.now(UTC).date() + timedelta(days=9)
            )
        },
        tags={"in_scope": tag},
        spare_admin={"in_scope": (await factories.admin(pending, ADMIN)).admin},
        assigned_admin={"in_scope": (await factories.admin(pending, ADMIN)).admin},
        templates={"in_scope": await _custom_template(pending, "Pending template")},
        outsider=(await factories.admin(northwind_like, ADMIN)).admin,
        webhooks={
            "in_scope": await AttentionWebhook.create(
                partner=pending,
                url="https://8.8.8.8/pending",
                topics=["STATUS_GAINED"],
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
        },
    )
    await CustomerAssignment.create(admin=matrix_like.assigned_admin["in_scope"], customer=customer)
    before = await everything()
    for mutation in MUTATIONS:
        query = mutation.query.replace("userErrors { code }", "userErrors { code message }")
        answer = await data(client, full.token, query, mutation.variables(matrix_like, "in_scope"))
        [error] = answer[mutation.name]["userErrors"]
        assert error["code"] == "FORBIDDEN", mutation.name
        assert "setup is pending" in error["message"], mutation.name
    assert await everything() == before


def test_every_mutation_of_the_matrix_names_its_audit_action() -> None:
    assert set(ACTIONS) == {m.name for m in MUTATIONS}
    assert len(set(ACTIONS.values())) == len(ACTIONS)
