"""Row producers of the five report types: one SQL query each, read in chunks.

Every query starts from the customers the requester sees (`customer_scope`,
alias `c`) in the chosen region, so a report never holds a row of a customer
outside the requester's scope. Each producer's rows come out in the column
order of its DEFAULT template (report_columns.py), already as text cells.

Each producer says how its cells are made twice, kept side by side: `cells`
in Python (SQLite, read through a cursor) and `copy_cells` in SQL over the
query's columns (PostgreSQL, where report_copy.py has the database write the
CSV itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from app.db import stream_rows
from app.domain.calling_rollup import POOR
from app.domain.report_columns import DEFINITIONS, ReportDefinition
from app.domain.sql import Sql, all_of
from app.models.enums import CallType, LicenseType, Product, Region, ReportType

# The window of the Webex App versions report when no range is given.
APP_VERSIONS_DAYS = 90
# The "last 30 days" of the subscription details report.
USAGE_DAYS = 30


@dataclass(frozen=True)
class CopyCell:
    """One cell of a DEFAULT template's column as PostgreSQL computes it, over the
    query's columns named r.c0, r.c1, ... (report_copy.py)."""

    sql: str
    # True for text that may be empty or start like a formula (names, ids typed
    # in by people); False for values whose text never does: numbers, UUIDs,
    # dates, fixed words.
    free_text: bool


def text_column(n: int) -> CopyCell:
    return CopyCell(f"r.c{n}", free_text=True)


def value_column(n: int) -> CopyCell:
    """A number or UUID column: PostgreSQL's text of it is Python's str()."""
    return CopyCell(f"r.c{n}", free_text=False)


def date_column(n: int) -> CopyCell:
    return CopyCell(f"to_char(r.c{n}, 'YYYY-MM-DD')", free_text=False)


def columns_of_kinds(kinds: str) -> tuple[CopyCell, ...]:
    """Cells that are the query's columns in order, one letter each: t (free
    text), v (number or UUID)."""
    make = {"t": text_column, "v": value_column}
    return tuple(make[k](n) for n, k in enumerate(kinds))


@dataclass(frozen=True)
class RowQuery:
    sql: Sql
    # Turns one database row into the cells of the DEFAULT template's columns.
    cells: Callable[[tuple[Any, ...]], list[str]]
    # The same cells in SQL, one per column of the DEFAULT template.
    copy_cells: tuple[CopyCell, ...]
    # How many columns `sql` selects.
    width: int


def cell(value: Any) -> str:
    """A database value as CSV text: empty for null, ISO for dates, str otherwise."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _plain(row: tuple[Any, ...]) -> list[str]:
    return [cell(v) for v in row]


def _day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after end 00:00 UTC)."""
    return datetime.combine(start, time.min, UTC), datetime.combine(
        end + timedelta(days=1), time.min, UTC
    )


def _where(scope: Sql, region: Region | None, *more: Sql) -> Sql:
    parts = [scope, *more]
    if region is not None:
        parts.append(Sql("c.region = ?", (region.value,)))
    return all_of(parts)


def _calls(condition: str) -> str:
    return f"COUNT(DISTINCT CASE WHEN {condition} THEN g.call_id END)"


def _legs(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def calling_usage(scope: Sql, region: Region | None, start: date, end: date) -> RowQuery:
    since, until = _day_bounds(start, end)
    where = _where(scope, region, Sql("g.started_at >= ? AND g.started_at < ?", (since, until)))
    call_types = ",\n  ".join(_calls(f"g.call_type = '{t.value}'") for t in CallType)
    sql = f"""
SELECT c.name, c.org_id, l.name,
  COUNT(DISTINCT g.call_id), COUNT(*), {_legs(POOR)},
  (SUM(g.duration_seconds) + 30) / 60, (SUM(g.video_seconds) + 30) / 60,
  {_legs("g.has_audio")}, {_legs("g.has_video")},
  {_legs("g.endpoint_type = 'DESK_PHONE'")}, {_legs("g.endpoint_type = 'ROOM_DEVICE'")},
  {_legs("g.endpoint_type IN ('OTHER_DEVICE', 'THIRD_PARTY', 'ANALOG')")},
  {_calls("g.feature = 'HUNT_GROUP'")}, {_calls("g.feature = 'AUTO_ATTENDANT'")},
  {_calls("g.feature = 'CALL_QUEUE'")},
  {_calls("g.queue_outcome = 'TIMED_OUT'")}, {_calls("g.queue_outcome = 'OVERFLOWED'")},
  {_calls("g.queue_outcome = 'TRANSFERRED'")}, {_calls("g.queue_outcome = 'ABANDONED'")},
  {call_types}
FROM call_leg g
JOIN customer c ON c.id = g.customer_id
LEFT JOIN location l ON l.id = g.location_id
WHERE {where.text}
GROUP BY c.id, c.name, c.org_id, l.id, l.name
ORDER BY c.name, c.id, COALESCE(l.name, ''), COALESCE(l.id, 0)
"""
    kinds = "tvt" + "v" * (17 + len(CallType))
    return RowQuery(Sql(sql, where.params), _plain, columns_of_kinds(kinds), len(kinds))


def devices(scope: Sql, region: Region | None) -> RowQuery:
    where = _where(scope, region)
    sql = f"""
SELECT c.external_id, c.name, c.org_id, l.uuid, l.name, d.product, d.mac, d.firmware,
  d.phone_number, d.extension, d.user_id, d.user_uuid
FROM device d
JOIN customer c ON c.id = d.customer_id
LEFT JOIN location l ON l.id = d.location_id
WHERE {where.text}
ORDER BY c.name, c.id, d.id
"""
    kinds = "ttvvtttttttv"
    return RowQuery(Sql(sql, where.params), _plain, columns_of_kinds(kinds), len(kinds))


def phone_numbers(scope: Sql, region: Region | None) -> RowQuery:
    where = _where(scope, region)
    sql = f"""
SELECT c.external_id, c.name, c.org_id, l.uuid, l.name, l.country, p.phone_number,
  p.extension, p.pstn_connection, CASE WHEN p.active THEN 'true' ELSE 'false' END,
  p.user_type, p.number_type, p.user_id, p.user_uuid
FROM phone_number p
JOIN customer c ON c.id = p.customer_id
LEFT JOIN location l ON l.id = p.location_id
WHERE {where.text}
ORDER BY c.name, c.id, p.number_key, p.id
"""
    kinds = "ttvvtttttvtttv"
    return RowQuery(Sql(sql, where.params), _plain, columns_of_kinds(kinds), len(kinds))


def app_versions(scope: Sql, region: Region | None, start: date, end: date) -> RowQuery:
    """Each user counts once per client type and platform, at the version (and OS
    version) seen last in the window."""
    where = _where(scope, region)
    sql = f"""
WITH seen AS (
  SELECT s.customer_id, s.client_type, s.platform, s.version, s.os_version,
    ROW_NUMBER() OVER (PARTITION BY s.customer_id, s.user_uuid, s.client_type, s.platform
                       ORDER BY s.seen_on DESC, s.id DESC) AS newest
  FROM app_session s
  WHERE s.seen_on >= ? AND s.seen_on <= ?
)
SELECT c.name, c.org_id, seen.client_type, seen.platform, seen.version, seen.os_version,
  COUNT(*)
FROM seen JOIN customer c ON c.id = seen.customer_id
WHERE seen.newest = 1 AND {where.text}
GROUP BY c.id, c.name, c.org_id, seen.client_type, seen.platform, seen.version, seen.os_version
ORDER BY c.name, c.id, seen.client_type, seen.platform, seen.version, seen.os_version
"""
    kinds = "tvttttv"
    return RowQuery(
        Sql(sql, (start, end, *where.params)), _plain, columns_of_kinds(kinds), len(kinds)
    )


# Subscription details: which license type fills which column pair. A wholesale
# customer (one with an external id) reports in the "(Wholesale)" columns.
LICENSE_COLUMNS: dict[LicenseType, tuple[str, str]] = {
    # license type: (column prefix, prefix for wholesale customers)
    LicenseType.MEETINGS: ("meetings", "wholesale_meetings"),
    LicenseType.CALLING_PROFESSIONAL: ("calling_professional", "calling_professional"),
    LicenseType.CALLING_STANDARD: ("calling_standard", "wholesale_calling_standard"),
    LicenseType.CUSTOMER_ASSIST: ("customer_assist", "wholesale_customer_assist"),
    LicenseType.COMMON_AREA_CALLING: (
        "wholesale_common_area_calling",
        "wholesale_common_area_calling",
    ),
    LicenseType.WEBEX_CALLING: ("wholesale_webex_calling", "wholesale_webex_calling"),
    LicenseType.WEBEX_VOICE: ("wholesale_webex_voice", "wholesale_webex_voice"),
    LicenseType.WEBEX_SUITE: ("wholesale_webex_suite", "wholesale_webex_suite"),
    LicenseType.ATTENDANT_CONSOLE: ("wholesale_attendant_console", "wholesale_attendant_console"),
}
SUBSCRIPTION_BASE_COLUMNS = 15  # calculation date .. messages sent, before the licenses


def _license_pivot() -> str:
    parts = []
    for t in (*LICENSE_COLUMNS, LicenseType.WORKSPACE):
        for measure in ("quantity", "assigned", "used"):
            parts.append(
                f"MAX(CASE WHEN ll.license_type = '{t.value}' THEN ll.{measure} END)"
                f" AS {t.value.lower()}_{measure}"
            )
    return ",\n    ".join(parts)


def subscription_details(scope: Sql, region: Region | None, today: date) -> RowQuery:
    """One row per current subscription or trial (ACTIVE, SUSPENDED, PENDING_SETUP)."""
    where = _where(scope, region, Sql("s.status IN ('ACTIVE', 'SUSPENDED', 'PENDING_SETUP')"))
    since = today - timedelta(days=USAGE_DAYS)
    sql = f"""
WITH lines AS (
  SELECT ll.subscription_id,
    {_license_pivot()}
  FROM license_line ll GROUP BY ll.subscription_id
),
users AS (
  SELECT customer_id, COUNT(*) AS total,
    SUM(CASE WHEN verified THEN 1 ELSE 0 END) AS verified
  FROM customer_user GROUP BY customer_id
),
org_usage AS (
  SELECT customer_id, SUM(meeting_participants) AS meeting_participants,
    SUM(calling_minutes) AS calling_minutes, SUM(messages_sent) AS messages_sent
  FROM daily_org_usage WHERE day >= ? AND day < ? GROUP BY customer_id
)
SELECT c.name, c.org_id, c.external_id, s.kind, s.subscription_id,
  (SELECT {_product_flags()} FROM license_line pl WHERE pl.subscription_id = s.id),
  CASE WHEN s.auto_renew THEN 'TRUE' ELSE 'FALSE' END, s.end_date,
  COALESCE(u.total, 0), COALESCE(u.verified, 0),
  COALESCE(us.meeting_participants, 0), COALESCE(us.calling_minutes, 0),
  COALESCE(us.messages_sent, 0),
  lines.*
FROM subscription s
JOIN customer c ON c.id = s.customer_id
LEFT JOIN lines ON lines.subscription_id = s.id
LEFT JOIN users u ON u.customer_id = c.id
LEFT JOIN org_usage us ON us.customer_id = c.id
WHERE {where.text}
ORDER BY c.name, c.id, s.subscription_id
"""
    keys = DEFINITIONS[ReportType.SUBSCRIPTION_DETAILS].column_keys
    license_index = {key: i for i, key in enumerate(keys)}
    pivot_types = (*LICENSE_COLUMNS, LicenseType.WORKSPACE)

    def cells(row: tuple[Any, ...]) -> list[str]:
        (name, org_id, external_id, kind, sub_id, products, auto_renew, end_date) = row[:8]
        total_users, verified, participants, minutes, messages = row[8:13]
        pivot = row[14:]  # row[13] is lines.subscription_id
        out = [""] * len(keys)
        out[:SUBSCRIPTION_BASE_COLUMNS] = [
            today.isoformat(),
            cell(name),
            cell(org_id),
            cell(external_id),
            "TRUE" if kind == "TRIAL" else "FALSE",
            cell(sub_id),
            _subscription_type(kind, products),
            auto_renew,
            cell(end_date),
            cell(total_users),
            cell(verified),
            "",  # workspaces, below
            cell(participants),
            cell(minutes),
            cell(messages),
        ]
        wholesale = bool(external_id)
        for i, license_type in enumerate(pivot_types):
            quantity, assigned, used = pivot[3 * i : 3 * i + 3]
            if quantity is None:
                continue
            if license_type is LicenseType.WORKSPACE:
                out[license_index["workspaces"]] = cell(quantity)
                continue
            prefix = LICENSE_COLUMNS[license_type][1 if wholesale else 0]
            out[license_index[f"{prefix}_available"]] = cell(max(quantity - assigned, 0))
            out[license_index[f"{prefix}_assigned"]] = cell(assigned)
            if f"{prefix}_used" in license_index:
                out[license_index[f"{prefix}_used"]] = cell(used)
        return out

    return RowQuery(
        Sql(sql, (since, today, *where.params)),
        cells,
        _subscription_copy_cells(keys, today),
        SUBSCRIPTION_WIDTH,
    )


# The query's columns: 13 before lines.*, then lines.subscription_id and the pivot.
SUBSCRIPTION_WIDTH = 14 + 3 * (len(LICENSE_COLUMNS) + 1)
_MEASURES = ("quantity", "assigned", "used")


def _pivot_column(license_type: LicenseType, measure: str) -> str:
    pivot_types = (*LICENSE_COLUMNS, LicenseType.WORKSPACE)
    return f"r.c{14 + 3 * pivot_types.index(license_type) + _MEASURES.index(measure)}"


def _license_cell(prefix: str, measure: str) -> str:
    """SQL of one license column (e.g. "meetings", "available"): the license type
    that fills it for customers that are wholesale (an external id) or not, as
    `cells` does."""
    branches = []
    for wholesale in (True, False):
        filling = [t for t, names in LICENSE_COLUMNS.items() if names[wholesale] == prefix]
        assert len(filling) <= 1, (prefix, filling)
        if not filling:
            branches.append("NULL")
            continue
        quantity = _pivot_column(filling[0], "quantity")
        assigned = _pivot_column(filling[0], "assigned")
        value = (
            f"GREATEST({quantity} - {assigned}, 0)"
            if measure == "available"
            else _pivot_column(filling[0], measure)
        )
        branches.append(f"CASE WHEN {quantity} IS NOT NULL THEN {value} END")
    return f"CASE WHEN COALESCE(r.c2, '') <> '' THEN {branches[0]} ELSE {branches[1]} END"


def _subscription_type_sql() -> str:
    """`_subscription_type` over the product flags (r.c5) and the kind (r.c3)."""
    order = list(Product)
    named = sorted(order, key=lambda p: PRODUCT_NAMES[p])
    names = ", ".join(
        f"CASE WHEN substr(r.c5, {order.index(p) + 1}, 1) = '1' THEN '{PRODUCT_NAMES[p]}' END"
        for p in named
    )
    label = f"COALESCE(NULLIF(array_to_string(ARRAY[{names}], ' + '), ''), 'No licenses')"
    return f"CASE WHEN r.c3 = 'TRIAL' THEN 'Enterprise Trial: ' || {label} ELSE {label} END"


def _subscription_copy_cells(keys: Sequence[str], today: date) -> tuple[CopyCell, ...]:
    fixed = {
        "calculation_date": CopyCell(f"'{today.isoformat()}'", free_text=False),
        "customer_name": text_column(0),
        "org_id": value_column(1),
        "wholesale_external_id": text_column(2),
        "trial": CopyCell("CASE WHEN r.c3 = 'TRIAL' THEN 'TRUE' ELSE 'FALSE' END", False),
        "subscription_id": text_column(4),
        "subscription_type": CopyCell(_subscription_type_sql(), free_text=False),
        "auto_renew": CopyCell("r.c6", free_text=False),
        "expiry_renewal_date": date_column(7),
        "total_users": value_column(8),
        "verified_users": value_column(9),
        "workspaces": CopyCell(_pivot_column(LicenseType.WORKSPACE, "quantity"), False),
        "meeting_participants_30d": value_column(10),
        "calling_minutes_30d": value_column(11),
        "messages_sent_30d": value_column(12),
    }
    out = []
    for key in keys:
        if key in fixed:
            out.append(fixed[key])
            continue
        prefix, measure = key.rsplit("_", 1)
        out.append(CopyCell(_license_cell(prefix, measure), free_text=False))
    return tuple(out)


PRODUCT_NAMES = {
    Product.CALLING: "Calling",
    Product.MEETINGS: "Meetings",
    Product.MESSAGING: "Messaging",
    Product.REAL_TIME_TRANSLATION: "Real-time translation",
    Product.CONTACT_CENTER: "Contact Center",
}


def _subscription_type(kind: str, flags: str | None) -> str:
    products = [p for p, flag in zip(Product, flags or "", strict=False) if flag == "1"]
    names = sorted(PRODUCT_NAMES[p] for p in products)
    label = " + ".join(names) or "No licenses"
    return f"Enterprise Trial: {label}" if kind == "TRIAL" else label


def _product_flags() -> str:
    """The subscription's products as one text of flags, e.g. '10100' (SQLite has no
    STRING_AGG before 3.44): one digit per Product, in declaration order."""
    flags = [f"MAX(CASE WHEN pl.product = '{p.value}' THEN '1' ELSE '0' END)" for p in Product]
    return " || ".join(flags)


def row_query(
    report_type: ReportType,
    scope: Sql,
    region: Region | None,
    start: date | None,
    end: date | None,
    today: date,
) -> RowQuery:
    if report_type is ReportType.CALLING_USAGE_DETAIL:
        assert start is not None and end is not None
        return calling_usage(scope, region, start, end)
    if report_type is ReportType.DEVICES:
        return devices(scope, region)
    if report_type is ReportType.PHONE_NUMBERS:
        return phone_numbers(scope, region)
    if report_type is ReportType.APP_VERSIONS:
        if start is None or end is None:
            start, end = app_versions_window(today)
        return app_versions(scope, region, start, end)
    return subscription_details(scope, region, today)


def app_versions_window(today: date) -> tuple[date, date]:
    """The default window: the 90 days that ended yesterday."""
    return today - timedelta(days=APP_VERSIONS_DAYS), today - timedelta(days=1)


async def report_rows(
    query: RowQuery, definition: ReportDefinition, keys: Sequence[str], chunk_rows: int
) -> AsyncIterator[list[list[str]]]:
    """The report's rows in chunks, each row the cells of `keys` in that order."""
    positions = [definition.column_keys.index(k) for k in keys]
    async for chunk in stream_rows(query.sql.text, query.sql.params, chunk_rows):
        rows = []
        for raw in chunk:
            cells = query.cells(raw)
            rows.append([cells[p] for p in positions])
        yield rows
