"""The root Query and the Strawberry schema with its limits."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)
from strawberry.types import ExecutionContext

from schema import admins, input_checks, tags, trials
from schema import attention_webhooks as webhook_schema
from schema import reports as report_schema
from schema.admins import Admin, AdminConnection, AdminPayload, AssignmentPayload, resolve_viewer
from schema.api_tokens import (
    ApiTokenConnection,
    CreateApiTokenPayload,
    RevokeApiTokenPayload,
    resolve_api_tokens,
    resolve_create_api_token,
    resolve_revoke_api_token,
)
from schema.attention import (
    AttentionEventConnection,
    AttentionSubscription,
    resolve_attention_events,
)
from schema.audit import AuditEventConnection, resolve_audit_log
from schema.calling_analytics import CallingAnalytics, resolve_calling_analytics
from schema.customers import (
    Customer,
    CustomerConnection,
    CustomerPayload,
    ExternalAdminPayload,
    TagCustomersPayload,
    resolve_add_tag_to_customers,
    resolve_customer,
    resolve_customers,
    resolve_grant_external_admin,
    resolve_remove_tag_from_customers,
    resolve_revoke_external_admin,
    resolve_set_customer_tags,
)
from schema.errors import ErrorPolicy, log_errors
from schema.limits import OperationLimits
from schema.metrics import OperationMetrics
from schema.node import Node, resolve_node
from schema.notifications import (
    NotificationPreferences,
    UpdateNotificationPreferencesPayload,
    resolve_notification_preferences,
    resolve_update_notification_preferences,
)
from schema.organization import (
    OrganizationPayload,
    PartnerOrganization,
    resolve_complete_setup,
    resolve_organization,
)
from schema.page_plan import PagePlanExecutor
from schema.payloads import DeletePayload
from schema.resources import Resource, resolve_resources
from schema.subscription_analytics import SubscriptionAnalytics, resolve_subscription_analytics
from schema.subscriptions import CustomerSubscription
from schema.tags import Tag, TagPayload
from schema.trials import Trial, TrialConnection, TrialPayload

MAX_QUERY_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 5000


@strawberry.type(name="Query")
class Query:
    node: Node | None = strawberry.field(
        resolver=resolve_node,
        description="Any object by its global id, within the viewer's scope; null otherwise.",
    )
    viewer: Admin = strawberry.field(resolver=resolve_viewer, description="The calling admin.")
    organization: PartnerOrganization = strawberry.field(
        resolver=resolve_organization, description="The viewer's partner organization."
    )
    customers: CustomerConnection = strawberry.field(
        resolver=resolve_customers,
        description="Customers the viewer's role reaches, filtered, ordered and paginated.",
    )
    customer: Customer | None = strawberry.field(
        resolver=resolve_customer, description="A customer in the viewer's scope; null otherwise."
    )
    tags: list[Tag] = strawberry.field(
        resolver=tags.resolve_tags, description="Custom tags of the viewer's partner."
    )
    admins: AdminConnection = strawberry.field(
        resolver=admins.resolve_admins, description="The Admins list of the viewer's partner."
    )
    trials: TrialConnection = strawberry.field(
        resolver=trials.resolve_trials,
        description="Trials of the customers the viewer sees, soonest end first.",
    )
    subscription_analytics: SubscriptionAnalytics = strawberry.field(
        resolver=resolve_subscription_analytics,
        description="KPIs and sections for the customers the viewer sees, for one product family.",
    )
    calling_analytics: CallingAnalytics = strawberry.field(
        resolver=resolve_calling_analytics,
        description="Weekly calling engagement of the viewer's customers in one region.",
    )
    report_templates: list[report_schema.ReportTemplate] = strawberry.field(
        resolver=report_schema.resolve_report_templates,
        description="The five DEFAULT templates, then the partner's CUSTOM ones.",
    )
    reports: report_schema.ReportConnection = strawberry.field(
        resolver=report_schema.resolve_reports,
        description="Reports the viewer may see, newest first.",
    )
    report: report_schema.Report | None = strawberry.field(
        resolver=report_schema.resolve_report,
        description="A report the viewer may see; null otherwise.",
    )
    report_schedules: report_schema.ReportScheduleConnection = strawberry.field(
        resolver=report_schema.resolve_report_schedules
    )
    resources: list[Resource] = strawberry.field(
        resolver=resolve_resources, description="Resources and help."
    )
    audit_log: AuditEventConnection = strawberry.field(
        resolver=resolve_audit_log,
        description="Every successful mutation, newest first (FULL_ADMIN, READ_ONLY_ADMIN).",
    )
    api_tokens: ApiTokenConnection = strawberry.field(
        resolver=resolve_api_tokens,
        description="API tokens of every admin of the partner, newest first (FULL_ADMIN).",
    )
    attention_events: AttentionEventConnection = strawberry.field(
        resolver=resolve_attention_events,
        description="Attention events of the customers the viewer sees, newest first, "
        "narrowed by type, customer and time.",
    )
    notification_preferences: NotificationPreferences = strawberry.field(
        resolver=resolve_notification_preferences,
        description="The viewer's own notification preferences (the daily attention digest).",
    )
    webhook_subscriptions: webhook_schema.WebhookSubscriptionConnection = strawberry.field(
        resolver=webhook_schema.resolve_webhook_subscriptions,
        description="The partner's webhook subscriptions to attention events, newest first "
        "(FULL_ADMIN).",
    )


@strawberry.type(name="Mutation")
class Mutation:
    complete_organization_setup: OrganizationPayload = strawberry.field(
        resolver=resolve_complete_setup,
        description="The first-time setup wizard (FULL_ADMIN): accept the terms.",
    )
    create_tag: TagPayload = strawberry.field(resolver=tags.resolve_create_tag)
    update_tag: TagPayload = strawberry.field(resolver=tags.resolve_update_tag)
    delete_tag: DeletePayload = strawberry.field(
        resolver=tags.resolve_delete_tag,
        description="Deletes the tag and removes it from every customer.",
    )
    set_customer_tags: CustomerPayload = strawberry.field(
        resolver=resolve_set_customer_tags, description="Replaces the customer's tags."
    )
    add_tag_to_customers: TagCustomersPayload = strawberry.field(
        resolver=resolve_add_tag_to_customers,
        description="Gives the tag to many customers at once (all or nothing).",
    )
    remove_tag_from_customers: TagCustomersPayload = strawberry.field(
        resolver=resolve_remove_tag_from_customers,
        description="Takes the tag off many customers at once.",
    )
    start_trial: TrialPayload = strawberry.field(resolver=trials.resolve_start_trial)
    extend_trial: TrialPayload = strawberry.field(resolver=trials.resolve_extend_trial)
    cancel_trial: TrialPayload = strawberry.field(resolver=trials.resolve_cancel_trial)
    assign_admin_to_customer: AssignmentPayload = strawberry.field(
        resolver=admins.resolve_assign_admin
    )
    unassign_admin_from_customer: DeletePayload = strawberry.field(
        resolver=admins.resolve_unassign_admin
    )
    grant_external_admin: ExternalAdminPayload = strawberry.field(
        resolver=resolve_grant_external_admin,
        description="Makes an admin of another partner organization (by e-mail) an external "
        "admin of one customer (FULL_ADMIN): it sees that customer read-only, managed by "
        "EXTERNAL_ADMIN, until revoked.",
    )
    revoke_external_admin: ExternalAdminPayload = strawberry.field(
        resolver=resolve_revoke_external_admin,
        description="Ends an external admin's grant (FULL_ADMIN): from its next request on "
        "the admin no longer sees the customer.",
    )
    create_admin: AdminPayload = strawberry.field(resolver=admins.resolve_create_admin)
    update_admin_role: AdminPayload = strawberry.field(resolver=admins.resolve_update_admin_role)
    remove_admin: admins.RemoveAdminPayload = strawberry.field(
        resolver=admins.resolve_remove_admin,
        description="Removes an admin (FULL_ADMIN): it signs in no more (API tokens "
        "revoked, OIDC refused), its customer assignments go, its reports stay, its report "
        "schedules move to `transferSchedulesTo`; never the last FULL_ADMIN.",
    )
    create_report_template: report_schema.ReportTemplatePayload = strawberry.field(
        resolver=report_schema.resolve_create_report_template
    )
    update_report_template: report_schema.ReportTemplatePayload = strawberry.field(
        resolver=report_schema.resolve_update_report_template,
        description="Renames a CUSTOM template or chooses its columns again (not DEFAULT "
        "ones); reports already requested keep their columns.",
    )
    delete_report_template: DeletePayload = strawberry.field(
        resolver=report_schema.resolve_delete_report_template,
        description="Deletes a CUSTOM template no schedule uses (CONFLICT naming the "
        "schedules otherwise); its past reports stay, with their columns.",
    )
    generate_report: report_schema.ReportPayload = strawberry.field(
        resolver=report_schema.resolve_generate_report,
        description="Queues a report; a worker writes its CSV file (see reportUpdated).",
    )
    create_report_schedule: report_schema.ReportSchedulePayload = strawberry.field(
        resolver=report_schema.resolve_create_report_schedule
    )
    update_report_schedule: report_schema.ReportSchedulePayload = strawberry.field(
        resolver=report_schema.resolve_update_report_schedule
    )
    delete_report_schedule: DeletePayload = strawberry.field(
        resolver=report_schema.resolve_delete_report_schedule,
        description="Deletes the schedule; its past reports stay.",
    )
    create_api_token: CreateApiTokenPayload = strawberry.field(
        resolver=resolve_create_api_token,
        description="A new API token (FULL_ADMIN); its secret is in the payload, once.",
    )
    revoke_api_token: RevokeApiTokenPayload = strawberry.field(
        resolver=resolve_revoke_api_token,
        description="Revokes an API token (FULL_ADMIN): it stops working at once.",
    )
    update_notification_preferences: UpdateNotificationPreferencesPayload = strawberry.field(
        resolver=resolve_update_notification_preferences,
        description="Sets the viewer's own notification preferences (every role): the daily "
        "attention digest by e-mail and its topics.",
    )
    create_webhook_subscription: webhook_schema.WebhookSubscriptionPayload = strawberry.field(
        resolver=webhook_schema.resolve_create_webhook_subscription,
        description="Subscribes a URL to attention events of the given topics (FULL_ADMIN): "
        "each is POSTed there, signed, in order per customer, retried with backoff.",
    )
    update_webhook_subscription: webhook_schema.WebhookSubscriptionPayload = strawberry.field(
        resolver=webhook_schema.resolve_update_webhook_subscription,
        description="Changes a webhook subscription's URL, topics or enabled state (FULL_ADMIN).",
    )
    delete_webhook_subscription: DeletePayload = strawberry.field(
        resolver=webhook_schema.resolve_delete_webhook_subscription,
        description="Deletes a webhook subscription and its deliveries (FULL_ADMIN).",
    )


@strawberry.type(name="Subscription")
class Subscription(report_schema.Subscription, AttentionSubscription):
    """Every subscription: reportUpdated (schema/reports.py), attentionEvents
    (schema/attention.py)."""


class PartnerHubSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logs errors by schema/errors.py's policy (Strawberry logs every one with
        its traceback)."""
        log_errors(errors, execution_context)


class CachedValidation(ValidationCache):
    """Strawberry's ValidationCache, except for a document an extension before it
    already refused (its validation would replace that refusal)."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors is not None:
            yield
            return
        yield from super().on_validate()


LIMIT_RULES = [
    query_depth_limiter.create_validator(MAX_QUERY_DEPTH, should_ignore=None),
    max_aliases.create_validator(MAX_ALIASES),
]

# Distinct documents whose parse and validation each process keeps.
DOCUMENT_CACHE_SIZE = 256

schema = PartnerHubSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    # Types reached only through interfaces, so node(id:) can answer them.
    types=[CustomerSubscription, Trial, Tag],
    # Customer pages completed by a compiled plan (schema/page_plan.py).
    execution_context_class=PagePlanExecutor,
    extensions=[
        # Parsed and validated documents kept (bounded LRU, per process): an SPA
        # or an integration sends the same few documents again and again.
        functools.partial(ParserCache, maxsize=DOCUMENT_CACHE_SIZE),
        # The depth and alias rules made once: the validation cache's key holds
        # the rule classes, and QueryDepthLimiter / MaxAliasesLimiter make new
        # ones for each request, so no document was ever found in it.
        functools.partial(AddValidationRules, LIMIT_RULES),
        functools.partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        OperationLimits,
        # After OperationLimits, which refuses an empty selection set first.
        functools.partial(CachedValidation, maxsize=DOCUMENT_CACHE_SIZE),
        # Before ErrorPolicy: it counts the errors as the client gets them.
        OperationMetrics,
        ErrorPolicy,
    ],
)
# Strict text in every argument, on the fields that take String arguments only.
input_checks.install(schema._schema)
