"""The contract's enums, exposed from the product's own vocabulary (app.models.enums)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import StrEnum

import strawberry

from app.domain.customers import CustomerOrderField as CustomerOrderFieldValue
from app.domain.errors import UserErrorCode as UserErrorCodeValue
from app.models import enums


def describe_values(enum_type: type, descriptions: Mapping[str, str]) -> None:
    """Give the values of an enum made from the product's own enum their
    descriptions (strawberry.enum_value needs the class to be written here)."""
    definition = enum_type.__strawberry_definition__  # type: ignore[attr-defined]
    unknown = set(descriptions) - {value.name for value in definition.values}
    assert not unknown, f"{definition.name} has no values {sorted(unknown)}"
    definition.values = [
        dataclasses.replace(value, description=descriptions.get(value.name, value.description))
        for value in definition.values
    ]


Region = strawberry.enum(
    enums.Region, name="Region", description="Data residency region of a customer organization."
)
Product = strawberry.enum(enums.Product, name="Product")
LicenseType = strawberry.enum(enums.LicenseType, name="LicenseType")
CustomerStatus = strawberry.enum(
    enums.CustomerStatus,
    name="CustomerStatus",
    description="Customer list statuses. A customer can carry several at once.",
)
describe_values(
    CustomerStatus,
    {
        "TRIAL": "An ongoing Webex trial.",
        "ACTIVE": "At least one active subscription.",
        "EXPIRING_SOON": "A subscription or trial ends within the expiring-soon window "
        "(default 30 days).",
        "LICENSE_OVERAGE": "A subscription has more licenses assigned than purchased.",
        "NO_RECENT_ACTIVITY": "No admin of the customer organization signed in within the "
        "activity window (default 30 days).",
        "READY_FOR_ORDER_SETUP": "A subscription is not fully set up yet.",
        "SUSPENDED": "A subscription has not been paid.",
        "EXPIRED": "No active subscription and no ongoing trial.",
    },
)
ManagedBy = strawberry.enum(
    enums.ManagedBy,
    name="ManagedBy",
    description="Managed by filter: customers the viewer manages as an external (assigned) "
    "admin, or customers of the viewer's partner organization.",
)
ProductFamily = strawberry.enum(
    enums.ProductFamily,
    name="ProductFamily",
    description="The Meetings/Calling toggle of the subscription analytics.",
)
SubscriptionKind = strawberry.enum(enums.SubscriptionKind, name="SubscriptionKind")
SubscriptionStatus = strawberry.enum(enums.SubscriptionStatus, name="SubscriptionStatus")
TrialStatus = strawberry.enum(enums.TrialStatus, name="TrialStatus")
CustomerOrderField = strawberry.enum(CustomerOrderFieldValue, name="CustomerOrderField")
UserErrorCode = strawberry.enum(UserErrorCodeValue, name="UserErrorCode")
ReportType = strawberry.enum(enums.ReportType, name="ReportType")
ReportTemplateKind = strawberry.enum(enums.ReportTemplateKind, name="ReportTemplateKind")
ReportStatus = strawberry.enum(enums.ReportStatus, name="ReportStatus")
ReportFrequency = strawberry.enum(enums.ReportFrequency, name="ReportFrequency")
EmailDeliveryStatus = strawberry.enum(
    enums.EmailDeliveryStatus,
    name="EmailDeliveryStatus",
    description="PENDING: not sent yet (queued or waiting for its next try); SENT: taken "
    "by the SMTP server (or written to the outbox folder); FAILED: refused for good or "
    "its last try failed; SKIPPED: the recipient may no longer receive the report.",
)


@strawberry.enum(name="SortDirection")
class SortDirection(StrEnum):
    ASC = "ASC"
    DESC = "DESC"


AttentionEventType = strawberry.enum(
    enums.AttentionEventType,
    name="AttentionEventType",
    description="What an attention event says happened to a customer; also the topics of "
    "partner webhooks and of the daily digest.",
)
describe_values(
    AttentionEventType,
    {
        "STATUS_GAINED": "The customer now carries `status` (it did not before).",
        "STATUS_LOST": "The customer no longer carries `status`.",
        "TRIAL_ENDING": "An active trial of the customer ends within the setting's days "
        "(PARTNERHUB_ATTENTION_TRIAL_ENDING_DAYS).",
        "LOW_LICENSE_ASSIGNMENT": "The customer entered the low license assignment section "
        "of subscription analytics (for `family`).",
        "CALL_QUALITY_DECLINING": "The customer's share of poor-quality calls rose week over "
        "week by at least the setting's points (PARTNERHUB_ATTENTION_QUALITY_RISE_POINTS).",
    },
)
WebhookDeliveryStatus = strawberry.enum(
    enums.AttentionDeliveryStatus,
    name="WebhookDeliveryStatus",
    description="Where one attention event's POST to one webhook subscription stands.",
)
describe_values(
    WebhookDeliveryStatus,
    {
        "PENDING": "Not delivered yet: waiting for its turn or its next try.",
        "DELIVERED": "The receiver answered 2xx.",
        "FAILED": "Given up: its tries ran out, or the subscription was disabled.",
    },
)
