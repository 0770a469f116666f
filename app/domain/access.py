"""Who sees and may change what: every tenant and role check lives here.

A viewer is an admin acting for its partner organization. Nothing of another
partner is ever reachable: every query a domain function runs for a viewer
starts from one of the scoped querysets below.

| role             | sees                                        |
|------------------|---------------------------------------------|
| FULL_ADMIN       | every customer of its partner               |
| ADMIN            | customers assigned to it                    |
| READ_ONLY_ADMIN  | every customer of its partner               |
| SALES_FULL_ADMIN | every customer of its partner               |
| SALES_ADMIN      | customers assigned to it or created by it   |

Whatever its role, an admin also sees, read-only, each customer of another
partner whose FULL_ADMIN made it an external admin of that customer (an
ExternalAdminGrant; `managedBy: EXTERNAL_ADMIN`). Readers start from
`visible_customers` / `customer_scope` (own scope and grants); every mutation
on a customer starts from `managed_customers` / `managed_customer_scope` (own
scope only), so a granted customer reads as not found there.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from app.domain.errors import Forbidden, UserErrorCode, reject
from app.domain.sql import Sql
from app.models.admins import Admin, ApiToken, CustomerAssignment, ExternalAdminGrant
from app.models.attention import AttentionWebhook
from app.models.audit import AuditEvent
from app.models.customers import Customer
from app.models.enums import AdminRole, ManagedBy
from app.models.organization import PartnerOrganization, PartnerSubscription
from app.models.reports import Report, ReportSchedule, ReportTemplate

# Roles that see every customer of their partner organization.
ALL_CUSTOMER_ROLES: frozenset[AdminRole] = frozenset(
    {AdminRole.FULL_ADMIN, AdminRole.READ_ONLY_ADMIN, AdminRole.SALES_FULL_ADMIN}
)


@dataclass(frozen=True)
class Viewer:
    """The admin a request acts for, with its partner organization. `with_grants`
    False leaves out the customers the admin sees through external-admin grants
    (a report that may be shared with the rest of the partner)."""

    admin: Admin
    partner: PartnerOrganization
    with_grants: bool = True

    @property
    def role(self) -> AdminRole:
        return AdminRole(self.admin.role)

    @property
    def partner_id(self) -> int:
        return self.partner.id

    @property
    def sees_all_customers(self) -> bool:
        return sees_all_customers(self.role)


# Whether the admin of an api_token row holds any external-admin grant, read with
# the token itself (one statement per request).
HOLDS_GRANT_SQL = (
    'EXISTS (SELECT 1 FROM external_admin_grant g WHERE g.admin_id = "api_token"."admin_id")'
)


def viewer_of(admin: Admin, holds_grant: bool) -> Viewer:
    """The viewer an admin (with its partner loaded) is for a request. Customers
    of other partners come in only for an admin that holds an external-admin
    grant: for every other admin the scope is its own partner's alone, a plain
    condition the customer indexes serve (ordering by name reads an index)."""
    return Viewer(admin=admin, partner=admin.partner, with_grants=holds_grant)


async def holds_grant(admin: Admin) -> bool:
    return await ExternalAdminGrant.filter(admin_id=admin.id).exists()


def sees_all_customers(role: AdminRole) -> bool:
    """True for roles that see every customer of the partner (accessAllCustomers)."""
    return role in ALL_CUSTOMER_ROLES


def receives_scheduled_reports(admin: Admin, partner_id: int) -> bool:
    """Who a scheduled report may be e-mailed to: an active admin of the partner
    whose role sees every customer (a schedule's file holds every customer, and
    its link needs no sign-in)."""
    return (
        admin.partner_id == partner_id  # type: ignore[attr-defined]
        and admin.removed_at is None
        and sees_all_customers(AdminRole(admin.role))
    )


def _managed_q(viewer: Viewer) -> Q:
    own = Q(partner_id=viewer.partner_id)
    if viewer.sees_all_customers:
        return own
    assigned = Q(
        id__in=Subquery(CustomerAssignment.filter(admin_id=viewer.admin.id).values("customer_id"))
    )
    if viewer.role is AdminRole.SALES_ADMIN:
        return own & (assigned | Q(created_by_id=viewer.admin.id))
    return own & assigned


def managed_customers(viewer: Viewer) -> QuerySet[Customer]:
    """The customers of the viewer's own partner that its role reaches: the ones a
    mutation may change (`managedBy: PARTNER_ORGANIZATION`)."""
    return Customer.filter(_managed_q(viewer))


def visible_customers(viewer: Viewer) -> QuerySet[Customer]:
    """The customers the viewer sees: those its role reaches in its own partner, and
    those of another partner it was made an external admin of (read-only)."""
    if not viewer.with_grants:
        return managed_customers(viewer)
    granted = ~Q(partner_id=viewer.partner_id) & Q(
        id__in=Subquery(ExternalAdminGrant.filter(admin_id=viewer.admin.id).values("customer_id"))
    )
    return Customer.filter(_managed_q(viewer) | granted)


ASSIGNED_SQL = (
    "EXISTS (SELECT 1 FROM customer_assignment a WHERE a.customer_id = c.id AND a.admin_id = ?)"
)
GRANTED_SQL = "c.id IN (SELECT g.customer_id FROM external_admin_grant g WHERE g.admin_id = ?)"


def managed_customer_scope(viewer: Viewer) -> Sql:
    """`managed_customers` as SQL on a customer row aliased `c`."""
    scope = Sql("c.partner_id = ?", (viewer.partner_id,))
    if viewer.sees_all_customers:
        return scope
    assigned = Sql(ASSIGNED_SQL, (viewer.admin.id,))
    if viewer.role is AdminRole.SALES_ADMIN:
        return scope & (assigned | Sql("c.created_by_id = ?", (viewer.admin.id,)))
    return scope & assigned


def assigned_to_viewer(viewer: Viewer) -> Sql:
    """Customers the viewer itself is assigned to as a partner admin (to combine
    with a scope; being assigned says nothing about `managedBy`)."""
    return Sql(ASSIGNED_SQL, (viewer.admin.id,))


def granted_customer_scope(viewer: Viewer) -> Sql:
    """Customers of other partners the viewer was made an external admin of."""
    return Sql("c.partner_id <> ?", (viewer.partner_id,)) & Sql(GRANTED_SQL, (viewer.admin.id,))


def customer_scope_parts(viewer: Viewer) -> list[Sql]:
    """`customer_scope` as disjoint parts (its own partner's customers, then those
    of other partners seen through grants): a list can count and page each part
    on its own index and add them up, where one OR of the two reads every row."""
    if not viewer.with_grants:
        return [managed_customer_scope(viewer)]
    return [managed_customer_scope(viewer), granted_customer_scope(viewer)]


def customer_scope(viewer: Viewer) -> Sql:
    """`visible_customers` as SQL on a customer row aliased `c` (for raw queries:
    every list, count, KPI and report row). tests/test_access.py checks that the
    two agree for every role, with grants."""
    if not viewer.with_grants:
        return managed_customer_scope(viewer)
    either = managed_customer_scope(viewer) | granted_customer_scope(viewer)
    # In parentheses: raw queries also write the text into a larger condition.
    return Sql(f"({either.text})", either.params)


def attention_event_scope(viewer: Viewer) -> Sql:
    """The attention events the viewer reads, as SQL on an `attention_event` row
    aliased `e` joined to its customer aliased `c` (`c.id = e.customer_id`): the
    events of the customers of `customer_scope`, its own partner's that its role
    reaches and, read-only, those of other partners it holds an external-admin
    grant of. Each event must be its customer's partner's: nothing else of
    another partner is ever read. The own part names `e.partner_id` so the
    (partner, id) index serves it."""
    own = Sql("e.partner_id = ?", (viewer.partner_id,)) & managed_customer_scope(viewer)
    if not viewer.with_grants:
        return own
    granted = Sql("e.partner_id = c.partner_id") & granted_customer_scope(viewer)
    either = own | granted
    return Sql(f"({either.text})", either.params)


def managed_by(viewer: Viewer, customer_partner_id: int) -> ManagedBy:
    """`Customer.managedBy` of a customer the viewer sees: its own partner's customers
    are PARTNER_ORGANIZATION, customers seen through a grant EXTERNAL_ADMIN."""
    if customer_partner_id == viewer.partner_id:
        return ManagedBy.PARTNER_ORGANIZATION
    return ManagedBy.EXTERNAL_ADMIN


def managed_by_condition(viewer: Viewer, which: ManagedBy) -> Sql:
    """The `managedBy` filter: holds for a visible customer exactly when `managed_by`
    says `which` (the two values split what the viewer sees in two)."""
    if which is ManagedBy.PARTNER_ORGANIZATION:
        return Sql("c.partner_id = ?", (viewer.partner_id,))
    return Sql("c.partner_id <> ?", (viewer.partner_id,))


def visible_admins(viewer: Viewer) -> QuerySet[Admin]:
    """Admins of the viewer's own partner organization (the Admins list, and the
    admins a mutation may name). A removed admin is gone from it: naming it reads
    as not found."""
    return Admin.filter(partner_id=viewer.partner_id, removed_at__isnull=True)


def referenced_admins(viewer: Viewer) -> QuerySet[Admin]:
    """Every admin of the viewer's partner, removed ones too: what an audit event's
    actor, a report's requester or a tag's creator names still resolves (and
    `node(id:)` answers it, with its `removedAt`)."""
    return Admin.filter(partner_id=viewer.partner_id)


def may_sign_in(admin: Admin) -> bool:
    """A removed admin signs in no more, by API token or OIDC (removeAdmin)."""
    return admin.removed_at is None


def require_role(viewer: Viewer, allowed: frozenset[AdminRole], action: str) -> None:
    """Refuse (FORBIDDEN, naming the roles that may) unless the viewer's role is allowed."""
    if viewer.role not in allowed:
        roles = " or ".join(sorted(r.value for r in allowed))
        raise reject(
            None,
            f"{action} needs the {roles} role (you are {viewer.role.value})",
            UserErrorCode.FORBIDDEN,
        )


def require_setup_completed(viewer: Viewer) -> None:
    """Every mutation but completeOrganizationSetup waits for the first-time setup."""
    if not viewer.partner.setup_completed:
        raise reject(
            None,
            "The organization setup is pending: a FULL_ADMIN must run "
            "completeOrganizationSetup (accept the terms) first.",
            UserErrorCode.FORBIDDEN,
        )


# Who may do what (SPEC.md: roles). Scope still applies: an ADMIN acts only on
# the customers assigned to it, a SALES_ADMIN on those assigned or created by it.
SETUP_ROLES = frozenset({AdminRole.FULL_ADMIN})
# Admin management: creating, changing roles, assigning, removing (removeAdmin).
ADMIN_MANAGEMENT_ROLES = frozenset({AdminRole.FULL_ADMIN})
TAG_ROLES = frozenset({AdminRole.FULL_ADMIN, AdminRole.ADMIN, AdminRole.SALES_FULL_ADMIN})
TRIAL_ROLES = frozenset(
    {AdminRole.FULL_ADMIN, AdminRole.ADMIN, AdminRole.SALES_FULL_ADMIN, AdminRole.SALES_ADMIN}
)
AUDIT_ROLES = frozenset({AdminRole.FULL_ADMIN, AdminRole.READ_ONLY_ADMIN})
# Reports: every role may generate and download reports (rows stay within its
# customers); READ_ONLY_ADMIN changes nothing else, so it makes no templates;
# schedules are FULL_ADMIN's (SPEC.md: roles).
REPORT_ROLES = frozenset(AdminRole)
REPORT_TEMPLATE_ROLES = frozenset(set(AdminRole) - {AdminRole.READ_ONLY_ADMIN})
SCHEDULE_ROLES = frozenset({AdminRole.FULL_ADMIN})
# API tokens: listing, creating and revoking the tokens of every admin of the partner.
API_TOKEN_ROLES = frozenset({AdminRole.FULL_ADMIN})
# removeAdmin moves the removed admin's report schedules to an admin of this role.
SCHEDULE_OWNER_ROLES = SCHEDULE_ROLES
# Roles that see only assigned customers: the ones a customer can be assigned to.
ASSIGNABLE_ROLES = frozenset(set(AdminRole) - ALL_CUSTOMER_ROLES)
# External admins: the managing partner's FULL_ADMIN grants and revokes them; the
# grant reaches the other partner's admin whatever its role (read-only).
EXTERNAL_ADMIN_ROLES = frozenset({AdminRole.FULL_ADMIN})


@dataclass(frozen=True)
class MutationRule:
    """Who may run one mutation: the roles allowed, the act as FORBIDDEN names it
    ("Creating tags needs the ... role"), and whether it waits for the first-time
    setup. app/domain/mutations.py applies it before anything else of the mutation."""

    roles: frozenset[AdminRole]
    act: str
    before_setup: bool = False  # only completeOrganizationSetup runs before the setup

    def check(self, viewer: Viewer) -> None:
        """The setup gate (unless `before_setup`), then the role: FORBIDDEN otherwise."""
        if not self.before_setup:
            require_setup_completed(viewer)
        require_role(viewer, self.roles, self.act)


# One rule per mutation of the schema (the Mutation type of schema/root.py).
COMPLETE_SETUP = MutationRule(SETUP_ROLES, "Completing the organization setup", before_setup=True)
CREATE_TAG = MutationRule(TAG_ROLES, "Creating tags")
UPDATE_TAG = MutationRule(TAG_ROLES, "Editing tags")
DELETE_TAG = MutationRule(TAG_ROLES, "Deleting tags")
TAG_CUSTOMERS = MutationRule(TAG_ROLES, "Tagging customers")
START_TRIAL = MutationRule(TRIAL_ROLES, "Starting trials")
EXTEND_TRIAL = MutationRule(TRIAL_ROLES, "Extending trials")
CANCEL_TRIAL = MutationRule(TRIAL_ROLES, "Cancelling trials")
ASSIGN_ADMIN = MutationRule(ADMIN_MANAGEMENT_ROLES, "Assigning admins to customers")
UNASSIGN_ADMIN = MutationRule(ADMIN_MANAGEMENT_ROLES, "Unassigning admins from customers")
GRANT_EXTERNAL_ADMIN = MutationRule(EXTERNAL_ADMIN_ROLES, "Granting external admins")
REVOKE_EXTERNAL_ADMIN = MutationRule(EXTERNAL_ADMIN_ROLES, "Revoking external admins")
CREATE_ADMIN = MutationRule(ADMIN_MANAGEMENT_ROLES, "Creating admins")
CHANGE_ADMIN_ROLE = MutationRule(ADMIN_MANAGEMENT_ROLES, "Changing admin roles")
REMOVE_ADMIN = MutationRule(ADMIN_MANAGEMENT_ROLES, "Removing admins")
CREATE_REPORT_TEMPLATE = MutationRule(REPORT_TEMPLATE_ROLES, "Creating report templates")
UPDATE_REPORT_TEMPLATE = MutationRule(REPORT_TEMPLATE_ROLES, "Changing report templates")
DELETE_REPORT_TEMPLATE = MutationRule(REPORT_TEMPLATE_ROLES, "Deleting report templates")
GENERATE_REPORT = MutationRule(REPORT_ROLES, "Generating reports")
CREATE_REPORT_SCHEDULE = MutationRule(SCHEDULE_ROLES, "Scheduling reports")
UPDATE_REPORT_SCHEDULE = MutationRule(SCHEDULE_ROLES, "Changing report schedules")
DELETE_REPORT_SCHEDULE = MutationRule(SCHEDULE_ROLES, "Deleting report schedules")
CREATE_API_TOKEN = MutationRule(API_TOKEN_ROLES, "Creating API tokens")
REVOKE_API_TOKEN = MutationRule(API_TOKEN_ROLES, "Revoking API tokens")
# Notification preferences: every role sets its own (and only its own).
NOTIFICATION_PREFERENCE_ROLES = frozenset(AdminRole)
UPDATE_NOTIFICATION_PREFERENCES = MutationRule(
    NOTIFICATION_PREFERENCE_ROLES, "Setting notification preferences"
)


def external_admin_candidates(viewer: Viewer) -> QuerySet[Admin]:
    """Admins the viewer may make external admins of its customers: admins of
    another partner organization that are not removed."""
    return Admin.filter(removed_at__isnull=True).exclude(partner_id=viewer.partner_id)


def visible_external_admin_grants(viewer: Viewer) -> QuerySet[ExternalAdminGrant]:
    """The grants on the viewer's own (managed) customers, for the managing side's
    `Customer.externalAdmins`; a grantee sees none (not even other partners')."""
    return ExternalAdminGrant.filter(
        customer__partner_id=viewer.partner_id, admin__removed_at__isnull=True
    )


def visible_api_tokens(viewer: Viewer) -> QuerySet[ApiToken]:
    """The API tokens of every admin of the viewer's partner (none of another partner)."""
    return ApiToken.filter(admin__partner_id=viewer.partner_id)


def reads_audit_log(viewer: Viewer) -> bool:
    """FULL_ADMIN and READ_ONLY_ADMIN read the audit trail; the other roles do not."""
    return viewer.role in AUDIT_ROLES


def visible_audit_events(viewer: Viewer) -> QuerySet[AuditEvent]:
    """The audit events of the viewer's partner for a role that reads the audit
    trail; none for the others (their `auditLog` is refused with FORBIDDEN, an
    event's id in `node(id:)` answers null, as a missing id would)."""
    events = AuditEvent.filter(partner_id=viewer.partner_id)
    if reads_audit_log(viewer):
        return events
    return events.filter(id__in=[])


def visible_organization(viewer: Viewer, organization_id: int) -> bool:
    """A viewer sees its own partner organization and no other."""
    return organization_id == viewer.partner_id


def visible_own_subscriptions(viewer: Viewer) -> QuerySet[PartnerSubscription]:
    """The partner's own subscriptions (its plan overview). SPEC.md names no role
    for them, so every admin of the partner reads them, also while the setup is
    pending (the setup wizard shows them). Never another partner's."""
    return PartnerSubscription.filter(partner_id=viewer.partner_id)


def visible_reports(viewer: Viewer) -> QuerySet[Report]:
    """Reports of the viewer's partner. A role that sees every customer sees every
    report; the others see only the reports they asked for (another admin's report
    may hold customers they do not reach)."""
    reports = Report.filter(partner_id=viewer.partner_id)
    if viewer.sees_all_customers:
        # A report holding customers its requester sees through a grant is its own:
        # the grant is to that one admin, not to its partner.
        return reports.filter(Q(with_granted_customers=False) | Q(requested_by_id=viewer.admin.id))
    return reports.filter(requested_by_id=viewer.admin.id)


def visible_schedules(viewer: Viewer) -> QuerySet[ReportSchedule]:
    """Schedules of the viewer's partner, on the same rule as reports."""
    schedules = ReportSchedule.filter(partner_id=viewer.partner_id)
    if viewer.sees_all_customers:
        return schedules
    return schedules.filter(created_by_id=viewer.admin.id)


def visible_templates(viewer: Viewer) -> QuerySet[ReportTemplate]:
    """The DEFAULT templates and the CUSTOM templates of the viewer's partner."""
    return ReportTemplate.filter(Q(partner_id=None) | Q(partner_id=viewer.partner_id))


def receives_attention_digest(admin: Admin) -> bool:
    """Who the daily attention digest (app/domain/attention_digest.py) may go to:
    an admin who may still sign in and has an e-mail address."""
    return may_sign_in(admin) and bool(admin.email)


def digest_viewer(admin: Admin) -> Viewer:
    """What a digest lists is read as this viewer: the admin (its partner loaded)
    with the customers its role reaches and those of its external-admin grants,
    as a sign-in of the admin sees them."""
    return Viewer(admin=admin, partner=admin.partner, with_grants=True)


# Partner webhooks of the attention feed (app/domain/attention_webhooks.py): the
# partner's FULL_ADMIN lists, creates, changes and deletes them; no other role
# reads them (a subscription's signing secret is in what it shows).
ATTENTION_WEBHOOK_ROLES = frozenset({AdminRole.FULL_ADMIN})
CREATE_WEBHOOK_SUBSCRIPTION = MutationRule(
    ATTENTION_WEBHOOK_ROLES, "Creating webhook subscriptions"
)
UPDATE_WEBHOOK_SUBSCRIPTION = MutationRule(
    ATTENTION_WEBHOOK_ROLES, "Changing webhook subscriptions"
)
DELETE_WEBHOOK_SUBSCRIPTION = MutationRule(
    ATTENTION_WEBHOOK_ROLES, "Deleting webhook subscriptions"
)


def require_attention_webhook_reader(viewer: Viewer) -> None:
    """Refuse (Forbidden, naming the role) a viewer who may not read the partner's
    webhook subscriptions."""
    if viewer.role not in ATTENTION_WEBHOOK_ROLES:
        raise Forbidden(
            f"Webhook subscriptions are visible to FULL_ADMIN only (you are {viewer.role.value})."
        )


def visible_attention_webhooks(viewer: Viewer) -> QuerySet[AttentionWebhook]:
    """The webhook subscriptions of the viewer's partner for a FULL_ADMIN; none for
    the other roles (a subscription's id in `node(id:)` answers null for them)."""
    hooks = AttentionWebhook.filter(partner_id=viewer.partner_id)
    if viewer.role in ATTENTION_WEBHOOK_ROLES:
        return hooks
    return hooks.filter(id__in=[])
