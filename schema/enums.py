"""The contract's enums, exposed from the product's own vocabulary (app.models.enums)."""

from __future__ import annotations

from enum import StrEnum

import strawberry

from app.domain.customers import CustomerOrderField as CustomerOrderFieldValue
from app.domain.errors import UserErrorCode as UserErrorCodeValue
from app.models import enums

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


@strawberry.enum(name="SortDirection")
class SortDirection(StrEnum):
    ASC = "ASC"
    DESC = "DESC"
