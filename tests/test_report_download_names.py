"""A downloaded report is named `<Template Name>_<random alphanumeric>_<download
date>.csv` (SPEC.md: reports; the seeds: "Default Template Name_alphanumeric
characters_Download Date"): the date is the day of the download, not the day
the report ran, in `download.fileName`, in the download's Content-Disposition
and in the webhook's fileName alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import httpx
import orjson

from app.config import Settings
from app.domain.ids import decode_global_id
from app.domain.reports import download_file_name
from app.domain.webhooks import payload
from app.models.enums import AdminRole
from app.models.reports import Report
from tests.report_helpers import (
    download,
    flush_queue,
    generate,
    report_of,
    run_jobs,
    templates_by_type,
)
from tests.report_world import build_report_world


async def test_a_report_run_days_ago_downloads_under_todays_date(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    w = await build_report_world()
    full = w.team[AdminRole.FULL_ADMIN].token
    templates = await templates_by_type(client, full)
    answer = await generate(client, full, templateId=templates["DEVICES"]["id"])
    assert answer["userErrors"] == []
    await run_jobs(redis_url, http_settings)
    report_id = answer["report"]["id"]
    _, pk = decode_global_id(report_id)  # type: ignore[misc]

    # The report ran three days ago (its stored name carries that day).
    stored = await Report.get(id=pk)
    match = re.fullmatch(r"Devices_([A-Za-z0-9]{12})_(\d{4}-\d{2}-\d{2})\.csv", stored.file_name)
    assert match, stored.file_name
    token = match[1]
    ran = (datetime.now(UTC) - timedelta(days=3)).date()
    await Report.filter(id=pk).update(file_name=f"Devices_{token}_{ran.isoformat()}.csv")

    today = datetime.now(UTC).date().isoformat()
    want = f"Devices_{token}_{today}.csv"
    report = await report_of(client, full, report_id)
    assert report["status"] == "SUCCEEDED"
    assert report["download"]["fileName"] == want
    # The same name on every read (the random part is the report's own).
    assert (await report_of(client, full, report_id))["download"]["fileName"] == want

    response = await download(client, report["download"]["url"])
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        f"attachment; filename=\"{want}\"; filename*=UTF-8''{quote(want)}"
    )
    parts = urlsplit(report["download"]["url"])
    head = await client.head(f"{parts.path}?{parts.query}")
    assert head.headers["content-disposition"] == response.headers["content-disposition"]

    # A webhook sent today names the file as a download today would.
    sent = orjson.loads(
        payload(await Report.get(id=pk), "https://x/dl", datetime.now(UTC), datetime.now(UTC))
    )
    assert sent["fileName"] == want

    # Who may not see the report gets no name at all: null, as for a missing id.
    for token_of_other in (
        w.team[AdminRole.ADMIN].token,
        w.contoso_team[AdminRole.FULL_ADMIN].token,
    ):
        assert await report_of(client, token_of_other, report_id) is None


async def test_the_download_name_keeps_the_template_name_and_token_whatever_the_day(
    db: Settings,
) -> None:
    day = datetime(2027, 2, 28, tzinfo=UTC).date()
    cases = {
        "Q3 - EMEA_Ab3dEf6hIj9K_2026-11-21.csv": "Q3 - EMEA_Ab3dEf6hIj9K_2027-02-28.csv",
        # A template name with an underscore and a date of its own keeps them.
        "Sales_2025-01-01_x_Zz0000000000_2026-11-21.csv": (
            "Sales_2025-01-01_x_Zz0000000000_2027-02-28.csv"
        ),
        # No date to replace (a row from before file names had one): as stored.
        "devices.csv": "devices.csv",
    }
    for stored, want in cases.items():
        assert download_file_name(Report(file_name=stored), day) == want, stored
    assert download_file_name(Report(file_name=None), day) == "report.csv"
