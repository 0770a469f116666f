"""The product's vocabulary: every enumerated value the data model stores.

The GraphQL layer exposes these same enums under the contract's names.
"""

from __future__ import annotations

from enum import StrEnum


class Region(StrEnum):
    """Data residency region of a customer organization."""

    US = "US"
    CA = "CA"
    EU = "EU"
    UAE = "UAE"


class Product(StrEnum):
    MEETINGS = "MEETINGS"
    CALLING = "CALLING"
    MESSAGING = "MESSAGING"
    REAL_TIME_TRANSLATION = "REAL_TIME_TRANSLATION"
    CONTACT_CENTER = "CONTACT_CENTER"


class ProductFamily(StrEnum):
    """The Meetings/Calling toggle of the subscription analytics."""

    MEETINGS = "MEETINGS"
    CALLING = "CALLING"


class LicenseType(StrEnum):
    MEETINGS = "MEETINGS"
    CALLING_PROFESSIONAL = "CALLING_PROFESSIONAL"
    CALLING_STANDARD = "CALLING_STANDARD"
    CUSTOMER_ASSIST = "CUSTOMER_ASSIST"
    COMMON_AREA_CALLING = "COMMON_AREA_CALLING"
    WEBEX_CALLING = "WEBEX_CALLING"
    WEBEX_VOICE = "WEBEX_VOICE"
    WEBEX_SUITE = "WEBEX_SUITE"
    ATTENDANT_CONSOLE = "ATTENDANT_CONSOLE"
    MESSAGING = "MESSAGING"
    REAL_TIME_TRANSLATION = "REAL_TIME_TRANSLATION"
    CONTACT_CENTER = "CONTACT_CENTER"
    WORKSPACE = "WORKSPACE"


# The product each license type belongs to (SPEC.md: products of a subscription).
LICENSE_PRODUCT: dict[LicenseType, Product] = {
    LicenseType.MEETINGS: Product.MEETINGS,
    LicenseType.WEBEX_SUITE: Product.MEETINGS,
    LicenseType.CALLING_PROFESSIONAL: Product.CALLING,
    LicenseType.CALLING_STANDARD: Product.CALLING,
    LicenseType.CUSTOMER_ASSIST: Product.CALLING,
    LicenseType.COMMON_AREA_CALLING: Product.CALLING,
    LicenseType.WEBEX_CALLING: Product.CALLING,
    LicenseType.WEBEX_VOICE: Product.CALLING,
    LicenseType.ATTENDANT_CONSOLE: Product.CALLING,
    LicenseType.WORKSPACE: Product.CALLING,
    LicenseType.MESSAGING: Product.MESSAGING,
    LicenseType.REAL_TIME_TRANSLATION: Product.REAL_TIME_TRANSLATION,
    LicenseType.CONTACT_CENTER: Product.CONTACT_CENTER,
}

# License lines counted by the analytics toggle (SPEC.md: subscription analytics).
FAMILY_LICENSE_TYPES: dict[ProductFamily, tuple[LicenseType, ...]] = {
    ProductFamily.CALLING: (
        LicenseType.CALLING_PROFESSIONAL,
        LicenseType.CALLING_STANDARD,
        LicenseType.WEBEX_CALLING,
        LicenseType.WEBEX_VOICE,
        LicenseType.COMMON_AREA_CALLING,
        LicenseType.CUSTOMER_ASSIST,
        LicenseType.ATTENDANT_CONSOLE,
    ),
    ProductFamily.MEETINGS: (LicenseType.MEETINGS, LicenseType.WEBEX_SUITE),
}


class CustomerStatus(StrEnum):
    TRIAL = "TRIAL"
    ACTIVE = "ACTIVE"
    EXPIRING_SOON = "EXPIRING_SOON"
    LICENSE_OVERAGE = "LICENSE_OVERAGE"
    NO_RECENT_ACTIVITY = "NO_RECENT_ACTIVITY"
    READY_FOR_ORDER_SETUP = "READY_FOR_ORDER_SETUP"
    SUSPENDED = "SUSPENDED"
    EXPIRED = "EXPIRED"


class ManagedBy(StrEnum):
    EXTERNAL_ADMIN = "EXTERNAL_ADMIN"
    PARTNER_ORGANIZATION = "PARTNER_ORGANIZATION"


class SubscriptionKind(StrEnum):
    SUBSCRIPTION = "SUBSCRIPTION"
    TRIAL = "TRIAL"


class SubscriptionStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PENDING_SETUP = "PENDING_SETUP"
    SUSPENDED = "SUSPENDED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"
    # Only on kind TRIAL: the trial became a paid subscription (its Trial says CONVERTED).
    CONVERTED = "CONVERTED"


class TrialStatus(StrEnum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    CONVERTED = "CONVERTED"
    CANCELLED = "CANCELLED"


class AdminRole(StrEnum):
    FULL_ADMIN = "FULL_ADMIN"
    ADMIN = "ADMIN"
    READ_ONLY_ADMIN = "READ_ONLY_ADMIN"
    SALES_FULL_ADMIN = "SALES_FULL_ADMIN"
    SALES_ADMIN = "SALES_ADMIN"


class OrderAction(StrEnum):
    NEW = "NEW"
    MODIFY = "MODIFY"
    RENEW = "RENEW"
    CANCEL = "CANCEL"


class EndpointType(StrEnum):
    """Where a call leg ended. ANALOG and THIRD_PARTY carry no quality metrics."""

    DESK_PHONE = "DESK_PHONE"
    ROOM_DEVICE = "ROOM_DEVICE"
    APP = "APP"
    OTHER_DEVICE = "OTHER_DEVICE"
    ANALOG = "ANALOG"
    THIRD_PARTY = "THIRD_PARTY"


class CallType(StrEnum):
    """Call type totals of the Calling usage detail report (seeds/000)."""

    INTERNAL = "INTERNAL"
    TOLL_FREE = "TOLL_FREE"
    PREMIUM = "PREMIUM"
    INTEGRATED_AUDIO = "INTEGRATED_AUDIO"
    NATIONAL = "NATIONAL"
    INBOUND = "INBOUND"
    OPERATOR_SERVICES = "OPERATOR_SERVICES"
    SPARK = "SPARK"
    SHORT_CODE = "SHORT_CODE"
    INTERNATIONAL = "INTERNATIONAL"
    MOBILE = "MOBILE"
    EMERGENCY = "EMERGENCY"
    UNKNOWN = "UNKNOWN"


class CallFeature(StrEnum):
    NONE = "NONE"
    HUNT_GROUP = "HUNT_GROUP"
    AUTO_ATTENDANT = "AUTO_ATTENDANT"
    CALL_QUEUE = "CALL_QUEUE"
    CALL_PARK = "CALL_PARK"
    CALL_PICKUP = "CALL_PICKUP"
    VOICEMAIL = "VOICEMAIL"


class QueueOutcome(StrEnum):
    """What happened to a call that entered a call queue."""

    ANSWERED = "ANSWERED"
    ABANDONED = "ABANDONED"
    TIMED_OUT = "TIMED_OUT"
    OVERFLOWED = "OVERFLOWED"
    TRANSFERRED = "TRANSFERRED"


class ReportType(StrEnum):
    CALLING_USAGE_DETAIL = "CALLING_USAGE_DETAIL"
    DEVICES = "DEVICES"
    PHONE_NUMBERS = "PHONE_NUMBERS"
    APP_VERSIONS = "APP_VERSIONS"
    SUBSCRIPTION_DETAILS = "SUBSCRIPTION_DETAILS"
    CUSTOMER_LIST = "CUSTOMER_LIST"


class ReportTemplateKind(StrEnum):
    DEFAULT = "DEFAULT"
    CUSTOM = "CUSTOM"


class ReportStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class EmailDeliveryStatus(StrEnum):
    """An e-mail of a scheduled report to one recipient (app/domain/report_emails.py)."""

    PENDING = "PENDING"  # not sent yet: queued, or waiting for its next try
    SENT = "SENT"  # accepted by the SMTP server (or written to the outbox folder)
    FAILED = "FAILED"  # given up: refused for good, or the last try failed
    SKIPPED = "SKIPPED"  # not sent: the recipient may no longer receive the report


class ReportFrequency(StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"


class ResourceSection(StrEnum):
    QUICK_LINK = "QUICK_LINK"
    FEATURED = "FEATURED"
    GENERAL = "GENERAL"


class AttentionEventType(StrEnum):
    """What an attention event says happened to a customer (app/domain/attention.py);
    also the topics a partner webhook subscribes to."""

    STATUS_GAINED = "STATUS_GAINED"  # the customer now carries `status`
    STATUS_LOST = "STATUS_LOST"  # the customer no longer carries `status`
    TRIAL_ENDING = "TRIAL_ENDING"  # an active trial ends within the setting's days
    LOW_LICENSE_ASSIGNMENT = "LOW_LICENSE_ASSIGNMENT"  # entered the low-assignment section
    CALL_QUALITY_DECLINING = "CALL_QUALITY_DECLINING"  # poor-quality call share rose week over week


class AttentionDeliveryStatus(StrEnum):
    """One attention event POSTed to one partner webhook subscription."""

    PENDING = "PENDING"  # not delivered yet: waiting for its turn or its next try
    DELIVERED = "DELIVERED"  # the receiver answered 2xx
    FAILED = "FAILED"  # given up: its tries ran out, or the subscription was disabled
