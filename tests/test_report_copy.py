"""Reports written by PostgreSQL's COPY (app/domain/report_copy.py) are byte for
byte the files the Python writer makes on SQLite.

The same rows, full of awkward text (line breaks, CRLF, quotes, commas, cells
that start like a formula, numbers that do, unicode, empty texts next to
missing values), are seeded on each database in turn; every DEFAULT template,
a CUSTOM one with some columns in another order and a CUSTOM one with a single
column of each report type are generated on both; the files must be equal, and
each report's rowCount the rows a CSV reader finds in its file.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import Settings
from app.db import copy_csv_out, fetch_all
from app.domain.report_columns import DEFINITIONS
from app.domain.report_copy import RowEnds, cell_sql
from app.domain.report_csv import FORMULA_STARTS, encode_rows, safe_cell, safe_cell_sql
from app.domain.report_generation import run_report
from app.domain.report_rows import CopyCell
from app.domain.reports import ReportRequest, create_report
from app.models.admins import Admin
from app.models.calling import CallLeg
from app.models.customers import Customer, CustomerUser, Location
from app.models.enums import (
    LICENSE_PRODUCT,
    AdminRole,
    CallFeature,
    CallType,
    EndpointType,
    LicenseType,
    QueueOutcome,
    Region,
    ReportStatus,
    ReportTemplateKind,
    ReportType,
    SubscriptionKind,
    SubscriptionStatus,
)
from app.models.inventory import AppSession, DailyOrgUsage, Device, PhoneNumber
from app.models.organization import PartnerOrganization
from app.models.reports import ReportTemplate
from app.models.subscriptions import LicenseLine, Subscription
from app.storage import LocalStorage
from tests import factories
from tests.conftest import opened_database
from tests.test_report_memory import _add_devices

# Text cells that each writer must write the same way, and what a reader of the
# file gets back for each (the formula rule: a `'` before text that starts with
# = + - @ TAB CR and is not a plain number).
AWKWARD = [
    ("=1+2", "'=1+2"),
    ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
    ("+1.5", "+1.5"),
    ("-1.5", "-1.5"),
    ("-104", "-104"),
    ("1e5", "1e5"),
    ("-1e5", "-1e5"),
    ("+1E-5", "+1E-5"),
    ("-.5", "-.5"),
    ("-5.", "-5."),
    ("-inf", "'-inf"),
    ("-nan", "'-nan"),
    ("-Infinity", "'-Infinity"),
    ("-1_0", "'-1_0"),
    ("- 1", "'- 1"),
    ("-1 ", "'-1 "),
    ("\t1", "'\t1"),
    ("\r\n=cmd", "'\r\n=cmd"),
    ("@risk", "'@risk"),
    ("-", "'-"),
    ("line\nbreak", "line\nbreak"),
    ("cr\r\nlf", "cr\r\nlf"),
    ("lone\rcr", "lone\rcr"),
    ('say "hi"', 'say "hi"'),
    ('"', '"'),
    ('""', '""'),
    ("comma, here", "comma, here"),
    ("ünïcødé ✓ 日本", "ünïcødé ✓ 日本"),
    ("\\.", "\\."),
    ("trailing\n", "trailing\n"),
    ("", ""),
    (None, ""),
]
START = date(2026, 11, 9)  # a Monday: legs over that week
END = START + timedelta(days=6)


def _uuid(n: int) -> uuid.UUID:
    return uuid.UUID(int=n)


def _fit(text: str | None, length: int) -> str | None:
    """The text cut to a column's length (ids and extensions are short)."""
    return None if text is None else text[:length]


async def _seed() -> tuple[PartnerOrganization, Admin]:
    """The same rows on either database (fixed UUIDs and times)."""
    partner = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.admin(partner, AdminRole.FULL_ADMIN)).admin
    created = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    customers = []
    for n, (name, external_id) in enumerate(
        (
            ("=Evil, Inc", "=WS-1"),
            ('Alpha "Quoted", Inc', "WS-1001"),
            ("Bravo\nLine break", ""),
            ("Charlie\r\nCRLF", None),
            ("Delta ünïcødé ✓", "-1.5"),
        )
    ):
        customers.append(
            await Customer.create(
                partner=partner,
                name=name,
                org_id=_uuid(1000 + n),
                external_id=external_id,
                region=Region.US if n % 2 else Region.EU,
                created_at=created,
                last_admin_activity_at=created + timedelta(days=n),
            )
        )
    locations = [
        await Location.create(
            customer=customers[n % len(customers)],
            uuid=_uuid(2000 + n),
            name=text if text is not None else f"Site {n}",
            country="US",
        )
        for n, (text, _) in enumerate(AWKWARD[:12])
    ]
    start = datetime.combine(START, time.min, UTC)
    for n, (text, _) in enumerate(AWKWARD):
        customer = customers[n % len(customers)]
        location = locations[n % len(locations)] if n % 7 else None
        await Device.create(
            customer=customer,
            location=location,
            device_uuid=_uuid(3000 + n),
            product=text if text is not None else "Cisco 8865",
            mac=f"00AABBCC{n:04X}",
            firmware=text,
            phone_number=_fit(text, 20),
            extension=_fit(AWKWARD[-1 - n][0], 10),
            user_id=text,
            user_uuid=_uuid(4000 + n) if n % 3 else None,
        )
        await PhoneNumber.create(
            customer=customer,
            location=location,
            number_key=f"key-{n:03d}",
            phone_number=_fit(text, 20),
            extension=_fit(AWKWARD[-1 - n][0], 10),
            pstn_connection=text,
            active=bool(n % 2),
            user_type=text,
            number_type=_fit(AWKWARD[(n + 5) % len(AWKWARD)][0], 10),
            user_id=text,
            user_uuid=_uuid(5000 + n) if n % 4 else None,
        )
        for part in range(2):
            await CallLeg.create(
                customer=customer,
                location=location,
                leg_id=f"leg-{n}-{part}",
                call_id=f"call-{n}",
                user_uuid=_uuid(6000 + n),
                started_at=start + timedelta(hours=5 * n, minutes=part),
                duration_seconds=29 + 17 * n,
                video_seconds=(n % 3) * 40,
                has_audio=True,
                has_video=n % 3 == 0,
                endpoint_type=list(EndpointType)[n % len(EndpointType)],
                jitter_ms=10.0 + 20 * n,
                latency_ms=50.0,
                packet_loss_pct=0.1 * part,
                call_type=list(CallType)[n % len(CallType)],
                feature=(CallFeature.CALL_QUEUE, CallFeature.NONE, CallFeature.HUNT_GROUP)[n % 3],
                queue_outcome=QueueOutcome.ABANDONED if n % 3 == 0 else None,
                queue_wait_seconds=20 if n % 3 == 0 else None,
            )
        await AppSession.create(
            customer=customer,
            user_uuid=_uuid(7000 + n),
            client_type=text if text is not None else "Desktop",
            platform=AWKWARD[(n + 3) % len(AWKWARD)][0] or "Windows",
            version=f"44.{n}",
            os_version=AWKWARD[(n + 9) % len(AWKWARD)][0] or "Windows 11",
            seen_on=date.today() - timedelta(days=1 + n),
        )
    await _subscriptions(customers)
    return partner, admin


async def _subscriptions(customers: list[Customer]) -> None:
    today = date.today()
    L = LicenseType
    rows = (
        (0, "=SUB-1", SubscriptionKind.SUBSCRIPTION, SubscriptionStatus.ACTIVE,
         [(L.MEETINGS, 50, 40, 30), (L.CALLING_STANDARD, 10, 12, 1), (L.WORKSPACE, 4, 4, 0)]),
        (1, "Sub, with comma", SubscriptionKind.SUBSCRIPTION, SubscriptionStatus.SUSPENDED,
         [(L.CALLING_PROFESSIONAL, 100, 60, 45), (L.CUSTOMER_ASSIST, 5, 1, 0),
          (L.WEBEX_CALLING, 3, 1, 1)]),
        (2, "ET-1", SubscriptionKind.TRIAL, SubscriptionStatus.ACTIVE,
         [(L.MESSAGING, 30, 0, 0), (L.MEETINGS, 5, 5, 5)]),
        (3, "Sub\nlined", SubscriptionKind.SUBSCRIPTION, SubscriptionStatus.PENDING_SETUP, []),
        (4, "-7", SubscriptionKind.SUBSCRIPTION, SubscriptionStatus.ACTIVE,
         [(L.MEETINGS, 1, 1, 1), (L.CALLING_STANDARD, 2, 0, 0)]),
    )  # fmt: skip
    for n, sub_id, kind, status, lines in rows:
        sub = await Subscription.create(
            customer=customers[n],
            subscription_id=sub_id,
            kind=kind,
            status=status,
            start_date=today - timedelta(days=200),
            end_date=today + timedelta(days=165) if n != 3 else None,
            auto_renew=n % 2 == 0,
            added_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
        for license_type, quantity, assigned, used in lines:
            await LicenseLine.create(
                subscription=sub,
                license_type=license_type,
                product=LICENSE_PRODUCT[license_type],
                quantity=quantity,
                assigned=assigned,
                used=used,
            )
    for n, customer in enumerate(customers):
        await CustomerUser.create(
            customer=customer,
            uuid=_uuid(8000 + n),
            email=f"user{n}@example.com",
            display_name="User",
            verified=n % 2 == 0,
            created_at=datetime(2026, 1, 5, tzinfo=UTC),
        )
        await DailyOrgUsage.create(
            customer=customer,
            day=today - timedelta(days=2),
            meeting_participants=n,
            calling_minutes=10 * n,
            messages_sent=3 * n,
        )


# One text column of each report type, for the single-column templates.
SINGLE = {
    ReportType.CALLING_USAGE_DETAIL: "location",
    ReportType.DEVICES: "firmware",
    ReportType.PHONE_NUMBERS: "extension",
    ReportType.APP_VERSIONS: "os_version",
    ReportType.SUBSCRIPTION_DETAILS: "subscription_id",
    ReportType.CUSTOMER_LIST: "external_id",
}


async def _templates(partner: PartnerOrganization, admin: Admin) -> list[ReportTemplate]:
    """Every DEFAULT template, and two CUSTOM ones per report type: every third
    column backwards, and one text column alone."""
    templates = list(await ReportTemplate.filter(partner_id=None).order_by("id"))
    for report_type, definition in DEFINITIONS.items():
        for name, keys in (
            (f"{definition.name} backwards", list(definition.column_keys[::-3])),
            (f"{definition.name} alone", [SINGLE[report_type]]),
        ):
            templates.append(
                await ReportTemplate.create(
                    partner=partner,
                    name=name,
                    name_key=name.lower(),
                    kind=ReportTemplateKind.CUSTOM,
                    report_type=report_type,
                    column_keys=keys,
                    created_by=admin,
                )
            )
    return templates


async def _generate_all(url: str, tmp_path: Path) -> dict[str, tuple[bytes, int]]:
    """Each template's file and rowCount, on the database at `url`."""
    files: dict[str, tuple[bytes, int]] = {}
    async with opened_database(url, tmp_path) as _:
        partner, admin = await _seed()
        storage = LocalStorage(tmp_path / "reports")
        for template in await _templates(partner, admin):
            dated = template.report_type == ReportType.CALLING_USAGE_DETAIL
            request = ReportRequest(
                template, START if dated else None, END if dated else None, None
            )
            report = await create_report(partner.id, request, admin.id, None, date.today())
            outcome = await run_report(report.id, storage, chunk_rows=3)
            assert outcome.report.status == ReportStatus.SUCCEEDED, outcome.report.error
            assert report.storage_key
            body = (tmp_path / "reports" / report.storage_key).read_bytes()
            files[template.name] = (body, outcome.report.row_count or 0)
    return files


def _read(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


async def test_every_template_makes_the_same_bytes_on_both_databases(
    sqlite_url: str, postgres_url: str, tmp_path: Path
) -> None:
    on_sqlite = await _generate_all(sqlite_url, tmp_path / "sqlite")
    on_postgres = await _generate_all(postgres_url, tmp_path / "postgres")

    assert list(on_sqlite) == list(on_postgres)
    assert len(on_sqlite) == 6 + 2 * 6
    for name, (body, rows) in on_sqlite.items():
        assert on_postgres[name][0] == body, name
        assert on_postgres[name][1] == rows, name
        parsed = _read(body)
        assert rows == len(parsed) - 1 > 0, name
        assert body.endswith(b"\r\n")
    # Rows with line breaks inside cells still count once each.
    devices, device_rows = on_postgres["Devices"]
    assert device_rows == len(AWKWARD)
    assert devices.count(b"\r\n") > device_rows + 1
    # What a reader gets back: the formula rule, empty cells for empty texts and
    # missing values alike.
    by_firmware = _read(devices)[1:]
    firmware = sorted(row[7] for row in by_firmware)
    assert firmware == sorted(expected for _, expected in AWKWARD)
    alone, alone_rows = on_postgres["Devices alone"]
    assert alone_rows == len(AWKWARD)
    assert alone.startswith(b"Firmware\r\n")
    # A row of one empty cell is `""` (an empty line would be no row at all), and
    # `\.` alone on a line is quoted.
    assert b'\r\n""\r\n' in alone
    assert b'\r\n"\\."\r\n' in alone
    assert sorted(r[0] for r in _read(alone)[1:]) == sorted(e for _, e in AWKWARD)
    backwards = _read(on_postgres["Devices backwards"][0])
    keys = DEFINITIONS[ReportType.DEVICES].column_keys[::-3]
    titles = [DEFINITIONS[ReportType.DEVICES].column(k).title for k in keys]
    assert backwards[0] == titles


def test_row_ends_are_the_same_however_the_copy_output_is_cut() -> None:
    """COPY's pieces may end anywhere, even between the two quotes of a doubled
    quote or inside a quoted line break."""
    rows = [["a", "b\nc", 'say "hi"\n'], ["", "x,y", '"'], ["\\.", "-1", "end\r\n"]]
    copy_csv = b""
    for row in rows:
        cells = [
            '"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',\r\n"') else c for c in row
        ]
        copy_csv += ",".join(cells).encode() + b"\n"
    whole = RowEnds()
    expected = whole.feed(copy_csv)
    assert whole.finish() == 3
    assert expected.count(b"\r\n") == 4  # three row ends and the CRLF inside a cell
    assert _read(expected) == rows
    for cut in range(len(copy_csv) + 1):
        for second_cut in (cut, min(cut + 3, len(copy_csv))):
            ends = RowEnds()
            out = (
                ends.feed(copy_csv[:cut])
                + ends.feed(copy_csv[cut:second_cut])
                + ends.feed(copy_csv[second_cut:])
            )
            assert (out, ends.finish()) == (expected, 3), cut


def test_copy_output_that_stops_inside_a_row_is_an_error() -> None:
    ends = RowEnds()
    ends.feed(b'a,"b\n')
    try:
        ends.finish()
    except ValueError:
        return
    raise AssertionError("a CSV that stops inside a quoted cell was taken as complete")


SAFE_TEXT = st.text(
    alphabet=st.sampled_from([*FORMULA_STARTS, *"0123456789.eE_ xinfa,\"'\n", "\u0661", "é"]),
    max_size=12,
) | st.text(max_size=8).map(lambda t: t.replace("\x00", ""))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(texts=st.lists(SAFE_TEXT, min_size=1, max_size=60))
async def test_the_sql_formula_rule_is_the_python_rule(
    postgres_db: Settings, texts: list[str]
) -> None:
    rows = await fetch_all(
        f"SELECT n, {safe_cell_sql('t')} AS safe FROM unnest(?::text[]) WITH ORDINALITY AS u(t, n)"
        " ORDER BY n",
        [texts],
    )
    assert [r["safe"] for r in rows] == [safe_cell(t) for t in texts]


class Interrupted(Exception):
    """Raised by the progress callback once some rows are written."""


async def test_a_report_that_fails_midway_leaves_no_file(db: Settings, tmp_path: Path) -> None:
    """Rows already written (COPY's first pieces on PostgreSQL) and then an error:
    no file, not even a partial one, and the database connection is fine after."""
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.admin(org, AdminRole.FULL_ADMIN)).admin
    customer = await factories.customer(org, "Big Customer")
    await _add_devices(customer.id, 5000, 0)
    template = await ReportTemplate.get(partner_id=None, report_type="DEVICES")
    request = ReportRequest(template, None, None, None)
    storage = LocalStorage(tmp_path / "reports")
    seen: list[int] = []

    def progress(rows: int) -> None:
        seen.append(rows)
        if rows >= 100:
            raise Interrupted

    failing = await create_report(org.id, request, admin.id, None, date.today())
    with pytest.raises(Interrupted):
        await run_report(failing.id, storage, chunk_rows=100, progress=progress)
    assert 100 <= seen[-1] < 5000
    assert not [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]

    again = await create_report(org.id, request, admin.id, None, date.today())
    outcome = await run_report(again.id, storage, chunk_rows=100)
    assert outcome.report.row_count == 5000
    assert [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]


CELL_TEXT = st.text(
    alphabet=st.sampled_from([*FORMULA_STARTS, *'0123456789.e ,"\n\\x', "\r", "é", "日"]),
    max_size=6,
) | st.text(max_size=6).map(lambda t: t.replace("\x00", ""))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    width=st.sampled_from([1, 3]),
    cells=st.lists(CELL_TEXT, min_size=1, max_size=60),
)
async def test_copy_csv_is_the_python_writers_csv(
    postgres_db: Settings, width: int, cells: list[str]
) -> None:
    """Any text through the SELECT and COPY of report_copy.py, line ends fixed,
    is what the Python writer makes of it: quoting, empty cells, line breaks."""
    rows = [cells[i : i + width] for i in range(0, len(cells) - width + 1, width)] or [[""] * width]
    columns = [[row[i] for row in rows] for i in range(width)]
    names = ", ".join(f"t{i}" for i in range(width))
    select = ", ".join(cell_sql(CopyCell(f"u.t{i}", True), alone=width == 1) for i in range(width))
    arrays = ", ".join("?::text[]" for _ in range(width))
    pieces: list[bytes] = []
    ends = RowEnds()

    async def output(data: bytes) -> None:
        pieces.append(ends.feed(data))

    await copy_csv_out(
        f"SELECT {select} FROM unnest({arrays}) WITH ORDINALITY AS u({names}, n) ORDER BY n",
        columns,
        output,
    )
    assert b"".join(pieces) == encode_rows(rows)
    assert ends.finish() == len(rows)
