"""Each report's rows computed in plain Python from the seeded rows of
tests/report_world.py, following SPEC.md's definitions (not the product's SQL)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from app.models.enums import CallType, EndpointType, LicenseType, SubscriptionStatus
from tests.report_world import ReportWorld

Row = dict[str, str]


def text(value: object) -> str:
    return "" if value is None else str(value)


def _visible(w: ReportWorld, customer_ids: set[int], region: str | None, customer_id: int) -> bool:
    c = w.customer_of(customer_id)
    return customer_id in customer_ids and (region is None or c.region == region)


def calling_usage(
    w: ReportWorld, customer_ids: set[int], region: str | None, start: date, end: date
) -> list[Row]:
    groups: dict[tuple[int, int | None], list] = defaultdict(list)
    for leg in w.legs:
        day = leg.started_at.date()
        if start <= day <= end and _visible(w, customer_ids, region, leg.customer_id):
            groups[(leg.customer_id, leg.location_id)].append(leg)

    def poor(leg) -> bool:
        measured = (
            leg.endpoint_type not in (EndpointType.ANALOG, EndpointType.THIRD_PARTY)
            and leg.ip_version == 4
            and None not in (leg.jitter_ms, leg.latency_ms, leg.packet_loss_pct)
        )
        return measured and (leg.jitter_ms > 150 or leg.latency_ms > 400 or leg.packet_loss_pct > 5)

    def calls(legs, condition) -> str:
        return str(len({leg.call_id for leg in legs if condition(leg)}))

    def count(legs, condition) -> str:
        return str(sum(1 for leg in legs if condition(leg)))

    rows = []
    for (customer_id, location_id), legs in groups.items():
        customer = w.customer_of(customer_id)
        location = w.location_of(location_id)
        row = {
            "customer_name": customer.name,
            "org_id": str(customer.org_id),
            "location": location.name if location else "",
            "total_calls": calls(legs, lambda g: True),
            "total_call_legs": str(len(legs)),
            "poor_quality_legs": count(legs, poor),
            "call_minutes": str(round_half_up(sum(g.duration_seconds for g in legs) / 60)),
            "video_minutes": str(round_half_up(sum(g.video_seconds for g in legs) / 60)),
            "legs_audio": count(legs, lambda g: g.has_audio),
            "legs_video": count(legs, lambda g: g.has_video),
            "legs_desk_phone": count(legs, lambda g: g.endpoint_type == EndpointType.DESK_PHONE),
            "legs_room_device": count(legs, lambda g: g.endpoint_type == EndpointType.ROOM_DEVICE),
            "legs_other_devices": count(
                legs,
                lambda g: (
                    g.endpoint_type
                    in (EndpointType.OTHER_DEVICE, EndpointType.THIRD_PARTY, EndpointType.ANALOG)
                ),
            ),
            "hunt_group_calls": calls(legs, lambda g: g.feature == "HUNT_GROUP"),
            "auto_attendant_calls": calls(legs, lambda g: g.feature == "AUTO_ATTENDANT"),
            "call_queue_calls": calls(legs, lambda g: g.feature == "CALL_QUEUE"),
            "call_queue_timed_out": calls(legs, lambda g: g.queue_outcome == "TIMED_OUT"),
            "call_queue_overflowed": calls(legs, lambda g: g.queue_outcome == "OVERFLOWED"),
            "call_queue_transferred": calls(legs, lambda g: g.queue_outcome == "TRANSFERRED"),
            "call_queue_abandoned": calls(legs, lambda g: g.queue_outcome == "ABANDONED"),
        }
        for t in CallType:
            row[f"{t.value.lower()}_calls"] = calls(legs, lambda g, t=t: g.call_type == t)
        rows.append(((customer.name, customer.id, row["location"], location_id or 0), row))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def round_half_up(value: float) -> int:
    return int(value + 0.5)


def devices(w: ReportWorld, customer_ids: set[int], region: str | None) -> list[Row]:
    rows = []
    for d in w.devices:
        if not _visible(w, customer_ids, region, d.customer_id):
            continue
        c = w.customer_of(d.customer_id)
        loc = w.location_of(d.location_id)
        row = {
            "external_id": text(c.external_id),
            "customer": c.name,
            "customer_org_id": str(c.org_id),
            "location_id": str(loc.uuid) if loc else "",
            "location_name": loc.name if loc else "",
            "product": d.product,
            "mac": d.mac,
            "firmware": text(d.firmware),
            "phone_number": text(d.phone_number),
            "extension": text(d.extension),
            "user_id": text(d.user_id),
            "user_uuid": text(d.user_uuid),
        }
        rows.append(((c.name, c.id, d.id), row))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def phone_numbers(w: ReportWorld, customer_ids: set[int], region: str | None) -> list[Row]:
    rows = []
    for p in w.numbers:
        if not _visible(w, customer_ids, region, p.customer_id):
            continue
        c = w.customer_of(p.customer_id)
        loc = w.location_of(p.location_id)
        row = {
            "external_id": text(c.external_id),
            "customer": c.name,
            "customer_org_id": str(c.org_id),
            "location_id": str(loc.uuid) if loc else "",
            "location_name": loc.name if loc else "",
            "country": loc.country if loc else "",
            "phone_number": text(p.phone_number),
            "extension": text(p.extension),
            "pstn_connection": text(p.pstn_connection),
            "active": "true" if p.active else "false",
            "user_type": text(p.user_type),
            "number_type": text(p.number_type),
            "user_id": text(p.user_id),
            "user_uuid": text(p.user_uuid),
        }
        rows.append(((c.name, c.id, p.number_key, p.id), row))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def app_versions(
    w: ReportWorld, customer_ids: set[int], region: str | None, start: date, end: date
) -> list[Row]:
    newest: dict[tuple, object] = {}
    for s in sorted(w.sessions, key=lambda s: (s.seen_on, s.id)):
        if start <= s.seen_on <= end and _visible(w, customer_ids, region, s.customer_id):
            newest[(s.customer_id, s.user_uuid, s.client_type, s.platform)] = s
    counts: dict[tuple, int] = defaultdict(int)
    for s in newest.values():
        counts[(s.customer_id, s.client_type, s.platform, s.version, s.os_version)] += 1
    rows = []
    for (customer_id, client, platform, version, os_version), users in counts.items():
        c = w.customer_of(customer_id)
        row = {
            "customer_name": c.name,
            "org_id": str(c.org_id),
            "client_type": client,
            "platform": platform,
            "version": version,
            "os_version": os_version,
            "user_count": str(users),
        }
        rows.append(((c.name, c.id, client, platform, version, os_version), row))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


# (license type, regular column prefix, wholesale column prefix) as the seeds list them.
LICENSE_COLUMNS = {
    LicenseType.MEETINGS: ("meetings", "wholesale_meetings"),
    LicenseType.CALLING_PROFESSIONAL: ("calling_professional", "calling_professional"),
    LicenseType.CALLING_STANDARD: ("calling_standard", "wholesale_calling_standard"),
    LicenseType.CUSTOMER_ASSIST: ("customer_assist", "wholesale_customer_assist"),
    LicenseType.COMMON_AREA_CALLING: ("wholesale_common_area_calling",) * 2,
    LicenseType.WEBEX_CALLING: ("wholesale_webex_calling",) * 2,
    LicenseType.WEBEX_VOICE: ("wholesale_webex_voice",) * 2,
    LicenseType.WEBEX_SUITE: ("wholesale_webex_suite",) * 2,
    LicenseType.ATTENDANT_CONSOLE: ("wholesale_attendant_console",) * 2,
}
PRODUCT_LABELS = {
    "CALLING": "Calling",
    "MEETINGS": "Meetings",
    "MESSAGING": "Messaging",
    "REAL_TIME_TRANSLATION": "Real-time translation",
    "CONTACT_CENTER": "Contact Center",
}


def subscription_details(
    w: ReportWorld, customer_ids: set[int], region: str | None, keys: list[str], today: date
) -> list[Row]:
    holding = {
        SubscriptionStatus.ACTIVE,
        SubscriptionStatus.SUSPENDED,
        SubscriptionStatus.PENDING_SETUP,
    }
    rows = []
    for s in w.subscriptions:
        if s.status not in holding or not _visible(w, customer_ids, region, s.customer_id):
            continue
        c = w.customer_of(s.customer_id)
        users = [u for u in w.users if u.customer_id == c.id]
        usage = [
            u
            for u in w.usage
            if u.customer_id == c.id and today - timedelta(days=30) <= u.day < today
        ]
        lines = w.lines[s.id]
        products = sorted({PRODUCT_LABELS[line.product] for line in lines})
        label = " + ".join(products) or "No licenses"
        row = dict.fromkeys(keys, "")
        row.update(
            {
                "calculation_date": today.isoformat(),
                "customer_name": c.name,
                "org_id": str(c.org_id),
                "wholesale_external_id": text(c.external_id),
                "trial": "TRUE" if s.kind == "TRIAL" else "FALSE",
                "subscription_id": s.subscription_id,
                "subscription_type": f"Enterprise Trial: {label}" if s.kind == "TRIAL" else label,
                "auto_renew": "TRUE" if s.auto_renew else "FALSE",
                "expiry_renewal_date": s.end_date.isoformat(),
                "total_users": str(len(users)),
                "verified_users": str(sum(1 for u in users if u.verified)),
                "meeting_participants_30d": str(sum(u.meeting_participants for u in usage)),
                "calling_minutes_30d": str(sum(u.calling_minutes for u in usage)),
                "messages_sent_30d": str(sum(u.messages_sent for u in usage)),
            }
        )
        for line in lines:
            if line.license_type == LicenseType.WORKSPACE:
                row["workspaces"] = str(line.quantity)
                continue
            if line.license_type not in LICENSE_COLUMNS:
                continue
            prefix = LICENSE_COLUMNS[line.license_type][1 if c.external_id else 0]
            row[f"{prefix}_available"] = str(max(line.quantity - line.assigned, 0))
            row[f"{prefix}_assigned"] = str(line.assigned)
            if f"{prefix}_used" in row:
                row[f"{prefix}_used"] = str(line.used)
        rows.append(((c.name, c.id, s.subscription_id), row))
    return [row for _, row in sorted(rows, key=lambda item: item[0])]


def spreadsheet_safe(value: str) -> str:
    """OWASP's CSV-injection rule: a cell starting with = + - @ tab or CR that is
    not a number gets a leading apostrophe."""
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value
