"""The DEFAULT report templates and their columns, in output order (SPEC.md:
reports; the descriptions follow seeds/000): the five of the seeds, and the
customer list as a report (issue 14 item 6).

A CUSTOM template is a name plus a subset of one default template's column
keys in the order the partner chose; its rows come from the same producer.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models.enums import ReportType


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    description: str


@dataclass(frozen=True)
class ReportDefinition:
    report_type: ReportType
    name: str
    description: str
    columns: tuple[Column, ...]
    # False for point-in-time inventories (and the subscription snapshot).
    supports_date_range: bool
    # True when a report cannot run without a range (calling usage).
    requires_date_range: bool

    @property
    def column_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.columns)

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


def _c(key: str, title: str, description: str) -> Column:
    return Column(key, title, description)


CUSTOMER_NAME = _c("customer_name", "Customer name", "Name of the customer organization.")
ORG_ID = _c("org_id", "Organization ID", "Unique ID of the customer organization in Control Hub.")
EXTERNAL_ID = _c(
    "external_id",
    "External ID",
    "External ID given when a wholesale customer was created; empty for customers "
    "without a wholesale arrangement.",
)
CUSTOMER = _c("customer", "Customer", "Name of the customer organization.")
CUSTOMER_ORG_ID = _c(
    "customer_org_id", "Customer org ID", "Organization UUID of the customer organization."
)
USER_ID = _c("user_id", "User ID", "ID (email) of the user it is assigned to.")
USER_UUID = _c("user_uuid", "User UUID", "UUID of the user it is currently assigned to.")


def _call_types() -> tuple[Column, ...]:
    rows = (
        ("internal", "Internal", "internal or external calls within the same organization"),
        ("toll_free", "Toll free", "toll-free calls (free for the caller)"),
        ("premium", "Premium", "calls to premium-rate or special-rate services"),
        (
            "integrated_audio",
            "Integrated audio",
            "integrated audio calls: dial-in or call-back with the Webex Calling app or device",
        ),
        ("national", "National", "outgoing domestic calls within the user's region"),
        ("inbound", "Inbound", "incoming calls from the PSTN or another external line"),
        ("operator_services", "Operator services", "calls that use network operator services"),
        ("spark", "Spark", "calls made and received between Webex users"),
        ("short_code", "Short code", "short-code feature or service calls"),
        (
            "international",
            "International",
            "outgoing calls from the user's home region to another region",
        ),
        ("mobile", "Mobile", "calls made or received with the user's mobile number"),
        ("emergency", "Emergency", "emergency calls, e.g. 911 in the US"),
        ("unknown", "Unknown", "calls whose type could not be determined"),
    )
    return tuple(
        _c(f"{key}_calls", f"Total {title.lower()} calls", f"Number of {text}.")
        for key, title, text in rows
    )


CALLING_USAGE_DETAIL = ReportDefinition(
    ReportType.CALLING_USAGE_DETAIL,
    "Calling usage detail",
    "Call legs that users of customer organizations made or received with Webex Calling, "
    "per customer and location, over a date range.",
    (
        CUSTOMER_NAME,
        ORG_ID,
        _c("location", "Location", "Location of the customer organization the calls belong to."),
        _c("total_calls", "Total calls", "Number of calls made by users."),
        _c("total_call_legs", "Total call legs", "Number of call legs made and received by users."),
        _c(
            "poor_quality_legs",
            "Poor quality call legs",
            "Call legs of poor quality: jitter over 150 ms, latency over 400 ms or packet "
            "loss over 5 %.",
        ),
        _c("call_minutes", "Call minutes", "Total minutes users spent in calls."),
        _c("video_minutes", "Call minutes - video", "Minutes users spent in calls with video on."),
        _c("legs_audio", "Call legs - audio", "Call legs that used audio."),
        _c("legs_video", "Call legs - video", "Call legs that used video."),
        _c("legs_desk_phone", "Call legs - desk phone", "Call legs on Cisco desk phones."),
        _c(
            "legs_room_device", "Call legs - room device", "Call legs on Cisco Room Series devices."
        ),
        _c(
            "legs_other_devices",
            "Call legs - other devices",
            "Call legs on third-party, analog and other devices.",
        ),
        _c("hunt_group_calls", "Calls - hunt group", "Incoming calls routed to hunt groups."),
        _c(
            "auto_attendant_calls",
            "Calls - auto attendant",
            "Incoming calls routed to auto attendants.",
        ),
        _c("call_queue_calls", "Call queue - total calls", "Incoming calls routed to call queues."),
        _c(
            "call_queue_timed_out",
            "Call queue - timed out calls",
            "Queued calls that failed because the wait passed the maximum.",
        ),
        _c(
            "call_queue_overflowed",
            "Call queue - overflowed calls",
            "Queued calls that passed the queue limit.",
        ),
        _c(
            "call_queue_transferred",
            "Call queue - transferred calls",
            "Calls transferred out of the queue.",
        ),
        _c(
            "call_queue_abandoned",
            "Call queue - abandoned calls",
            "Queued calls where the caller hung up or left a message before an agent was free.",
        ),
        *_call_types(),
    ),
    supports_date_range=True,
    requires_date_range=True,
)

DEVICES = ReportDefinition(
    ReportType.DEVICES,
    "Devices",
    "The current device inventory of every customer (a snapshot: no date range).",
    (
        EXTERNAL_ID,
        CUSTOMER,
        CUSTOMER_ORG_ID,
        _c("location_id", "Location ID", "UUID of the location the device belongs to."),
        _c("location_name", "Location name", "Name of the location the device belongs to."),
        _c("product", "Product", "Product type of the device."),
        _c("mac", "MAC", "Media Access Control address of the device."),
        _c("firmware", "Firmware", "Software version of the device."),
        _c("phone_number", "Phone number", "Primary phone number of the device."),
        _c("extension", "Extension", "Primary extension of the device."),
        USER_ID,
        USER_UUID,
    ),
    supports_date_range=False,
    requires_date_range=False,
)

PHONE_NUMBERS = ReportDefinition(
    ReportType.PHONE_NUMBERS,
    "Phone numbers",
    "Every current Webex Calling phone number and extension of every customer (a snapshot: "
    "no date range).",
    (
        EXTERNAL_ID,
        CUSTOMER,
        CUSTOMER_ORG_ID,
        _c("location_id", "Location ID", "UUID of the location the number belongs to."),
        _c("location_name", "Location name", "Name of the location the number belongs to."),
        _c("country", "Country", "Country of the location the number belongs to."),
        _c("phone_number", "Phone number", "The phone number; empty for extensions."),
        _c("extension", "Extension", "The extension; empty for phone numbers."),
        _c(
            "pstn_connection",
            "PSTN connection",
            "Provider of the number's PSTN connection; empty for extensions.",
        ),
        _c("active", "Active", "true for activated numbers, false for numbers not activated."),
        _c(
            "user_type",
            "User type",
            "Type of what the number is assigned to (People, Auto attendant, Virtual queue, "
            "...); empty when unassigned.",
        ),
        _c(
            "number_type",
            "Number type",
            "Primary or Secondary number of the user; empty for extensions and unassigned numbers.",
        ),
        _c(
            "user_id",
            "User ID",
            "ID of the user the number or extension is assigned to (the email for People).",
        ),
        _c(
            "user_uuid",
            "User UUID",
            "UUID of the user, auto attendant, ... the number is assigned to.",
        ),
    ),
    supports_date_range=False,
    requires_date_range=False,
)

APP_VERSIONS = ReportDefinition(
    ReportType.APP_VERSIONS,
    "Webex App versions",
    "Webex App versions used by users of customer organizations, per platform and operating "
    "system: the last 90 days, or a chosen range within them.",
    (
        CUSTOMER_NAME,
        _c("org_id", "Organization ID", "Unique identifier of the customer organization."),
        _c("client_type", "Client type", "Type of Webex App client installed on the user's OS."),
        _c("platform", "Platform", "Details of the machine."),
        _c("version", "Version", "Latest detected version of the Webex App client."),
        _c("os_version", "OS version", "Latest detected version of the machine's OS."),
        _c("user_count", "User count", "Number of users on that platform and version."),
    ),
    supports_date_range=True,
    requires_date_range=False,
)


def _licenses() -> tuple[Column, ...]:
    rows = (
        ("meetings", "Meetings license", "Webex Meetings", True),
        (
            "calling_professional",
            "Calling Professional license",
            "Webex Calling Professional",
            True,
        ),
        ("calling_standard", "Calling Standard license", "Webex Calling Standard", True),
        ("customer_assist", "Customer Assist license", "Customer Assist", False),
        (
            "wholesale_common_area_calling",
            "(Wholesale) Common Area Calling",
            "Common Area Calling",
            False,
        ),
        ("wholesale_webex_calling", "(Wholesale) Webex Calling", "Webex Calling", False),
        (
            "wholesale_calling_standard",
            "(Wholesale) Webex Calling Standard",
            "Webex Calling Standard",
            False,
        ),
        ("wholesale_webex_voice", "(Wholesale) Webex Voice", "Webex Voice", False),
        ("wholesale_customer_assist", "(Wholesale) Customer Assist", "Customer Assist", False),
        ("wholesale_webex_suite", "(Wholesale) Webex Suite", "Webex Suite", False),
        (
            "wholesale_attendant_console",
            "(Wholesale) Attendant Console",
            "Attendant Console",
            False,
        ),
        ("wholesale_meetings", "(Wholesale) Webex Meetings", "Webex Meetings", False),
    )
    columns: list[Column] = []
    for key, title, product, with_used in rows:
        whose = "wholesale customer's" if key.startswith("wholesale_") else "customer's"
        columns.append(
            _c(
                f"{key}_available",
                f"{title} - available",
                f"{product} licenses not assigned yet in the {whose} organization.",
            )
        )
        columns.append(
            _c(
                f"{key}_assigned",
                f"{title} - assigned",
                f"{product} licenses assigned to users in the {whose} organization.",
            )
        )
        if with_used:
            columns.append(
                _c(
                    f"{key}_used",
                    f"{title} - used",
                    f"{product} licenses used at least once by users.",
                )
            )
    return tuple(columns)


SUBSCRIPTION_DETAILS = ReportDefinition(
    ReportType.SUBSCRIPTION_DETAILS,
    "Subscription details",
    "Activated and assigned licenses of every current subscription and trial of every "
    "customer, as of the calculation date.",
    (
        _c("calculation_date", "Calculation date", "Date the report was run (UTC)."),
        CUSTOMER_NAME,
        _c("org_id", "Organization ID", "Unique identifier of the customer organization."),
        _c(
            "wholesale_external_id",
            "(Wholesale) External ID",
            "External identifier of the wholesale customer organization.",
        ),
        _c("trial", "Trial", "TRUE when the subscription is a trial, FALSE otherwise."),
        _c("subscription_id", "Subscription ID", "Unique identifier of the subscription."),
        _c(
            "subscription_type",
            "Subscription type",
            "The products of the subscription the customer bought.",
        ),
        _c("auto_renew", "Auto-renew enabled", "TRUE when the subscription renews by itself."),
        _c(
            "expiry_renewal_date",
            "Expiry / renewal date",
            "Date the subscription renews (auto-renew) or expires.",
        ),
        _c("total_users", "Total users in the org", "Users in the customer organization."),
        _c("verified_users", "Total verified users", "Users with the verified status."),
        _c("workspaces", "Total workspaces in the org", "Workspace licenses the customer bought."),
        _c(
            "meeting_participants_30d",
            "Meeting participants - last 30 days",
            "Users who joined meetings in the 30 days before the calculation date.",
        ),
        _c(
            "calling_minutes_30d",
            "Calling minutes - last 30 days",
            "Minutes of Webex calls in the 30 days before the calculation date.",
        ),
        _c(
            "messages_sent_30d",
            "Messages sent - last 30 days",
            "Messages sent in the Webex App in the 30 days before the calculation date.",
        ),
        *_licenses(),
    ),
    supports_date_range=False,
    requires_date_range=False,
)

# Lists in one cell (statuses, products, tags) are joined with this.
LIST_SEPARATOR = "; "

CUSTOMER_LIST = ReportDefinition(
    ReportType.CUSTOMER_LIST,
    "Customer list",
    "The customer list as the customers query shows it, one row per customer (by name), "
    "for the customers filter given with the report (or every customer).",
    (
        CUSTOMER_NAME,
        ORG_ID,
        EXTERNAL_ID,
        _c("region", "Region", "Data residency region: US, CA, EU or UAE."),
        _c(
            "statuses",
            "Statuses",
            "Every status the customer carries (TRIAL, ACTIVE, EXPIRING_SOON, "
            "LICENSE_OVERAGE, NO_RECENT_ACTIVITY, READY_FOR_ORDER_SETUP, SUSPENDED, EXPIRED), "
            "separated by '; '.",
        ),
        _c(
            "products",
            "Products",
            "The products of all its subscriptions and trials, separated by '; '.",
        ),
        _c("tags", "Tags", "Names of the partner's tags the customer carries, separated by '; '."),
        _c(
            "managed_by",
            "Managed by",
            "PARTNER_ORGANIZATION or EXTERNAL_ADMIN, relative to the admin the report is for.",
        ),
        _c(
            "total_licenses",
            "Total licenses",
            "Licenses of the subscriptions and trials that hold them (active, suspended, "
            "pending setup).",
        ),
        _c("assigned_licenses", "Assigned licenses", "Of them, licenses assigned to users."),
        _c(
            "available_licenses",
            "Available licenses",
            "Licenses not assigned yet: per license line, quantity minus assigned (not below 0).",
        ),
        _c(
            "overage_licenses",
            "Overage licenses",
            "Licenses assigned beyond the quantity: per license line, assigned minus quantity "
            "(not below 0).",
        ),
        _c(
            "next_end_date",
            "Next end date",
            "The soonest end date, today or later, of a subscription or trial that holds "
            "licenses; empty when there is none.",
        ),
        _c("created_at", "Created", "When the customer was created (UTC)."),
        _c(
            "last_admin_activity_at",
            "Last admin activity",
            "When an admin of the customer organization last signed in (UTC); empty if never.",
        ),
    ),
    supports_date_range=False,
    requires_date_range=False,
)

DEFINITIONS: dict[ReportType, ReportDefinition] = {
    d.report_type: d
    for d in (
        CALLING_USAGE_DETAIL,
        DEVICES,
        PHONE_NUMBERS,
        APP_VERSIONS,
        SUBSCRIPTION_DETAILS,
        CUSTOMER_LIST,
    )
}
