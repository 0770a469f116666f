"""Webhooks of scheduled reports: when a scheduled run finishes, a signed POST
to the schedule's URL, retried with doubling delays, at most 5 attempts.

Signature: `X-PartnerHub-Signature: sha256=<hex HMAC-SHA256 of
"<X-PartnerHub-Timestamp>.<body>">`, keyed with the schedule's webhook signing
secret (ReportSchedule.webhookSigningSecret), so a receiver can check both who
sent it and that it is recent.

Each attempt checks the URL again (app.domain.webhook_targets) and posts to the
address it checked: a host that now resolves to a private address, a redirect,
an error status or no answer within the time limit is a failed attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime

import httpx
import orjson

from app.domain.downloads import sign_download
from app.domain.ids import encode_global_id
from app.domain.reports import download_file_name
from app.domain.webhook_targets import SEND_TIMEOUT_SECONDS, TargetRefused, check_target, send
from app.models.enums import ReportStatus
from app.models.reports import Report, ReportSchedule, WebhookDelivery

MAX_ATTEMPTS = 5
EVENT = "report.finished"


def schedule_secret(key: str, schedule_id: int) -> str:
    """The signing secret of one schedule's webhook, derived from the service key."""
    digest = hmac.new(key.encode(), f"webhook:{schedule_id}".encode(), hashlib.sha256)
    return "whsec_" + digest.hexdigest()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


async def webhook_for(report: Report) -> WebhookDelivery | None:
    """A delivery row for a finished scheduled report whose schedule has a webhook."""
    if report.schedule_id is None or report.status not in (
        ReportStatus.SUCCEEDED,
        ReportStatus.FAILED,
    ):
        return None
    schedule = await ReportSchedule.get_or_none(id=report.schedule_id)
    if schedule is None or not schedule.webhook_url:
        return None
    return await WebhookDelivery.create(report_id=report.id, url=schedule.webhook_url)


def payload(
    report: Report, download_url: str | None, expires_at: datetime | None, now: datetime
) -> bytes:
    return orjson.dumps(
        {
            "event": EVENT,
            "reportId": encode_global_id("Report", report.id),
            "scheduleId": encode_global_id("ReportSchedule", report.schedule_id)
            if report.schedule_id
            else None,
            "status": report.status,
            "rowCount": report.row_count,
            "fileName": download_file_name(report, now.date()) if download_url else None,
            "checksum": report.checksum if download_url else None,
            "downloadUrl": download_url,
            "downloadExpiresAt": expires_at.isoformat() if expires_at else None,
            "error": report.error,
        }
    )


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    # Seconds until the next attempt; None when there is none (delivered or given up).
    retry_in: float | None


async def deliver(
    delivery_id: int,
    key: str,
    base_url: str,
    ttl_seconds: int,
    retry_base_seconds: float,
    now: datetime,
    *,
    allowed_hosts: frozenset[str],
) -> Attempt:
    """One attempt of a delivery; records its outcome on the delivery row."""
    delivery = await WebhookDelivery.get_or_none(id=delivery_id)
    if delivery is None or delivery.delivered_at is not None:
        return Attempt(delivered=delivery is not None, retry_in=None)
    if delivery.attempts >= MAX_ATTEMPTS:
        return Attempt(delivered=False, retry_in=None)
    report = await Report.get(id=delivery.report_id)
    url = expires_at = None
    if report.status == ReportStatus.SUCCEEDED:
        signed = sign_download(key, base_url, report.id, now, ttl_seconds)
        url, expires_at = signed.url, signed.expires_at
    body = payload(report, url, expires_at, now)
    timestamp = int(time.time())
    secret = schedule_secret(key, report.schedule_id or 0)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "PartnerHub-Webhook/1",
        "X-PartnerHub-Event": EVENT,
        "X-PartnerHub-Delivery": str(delivery.id),
        "X-PartnerHub-Timestamp": str(timestamp),
        "X-PartnerHub-Signature": signature(secret, timestamp, body),
    }
    delivery.attempts += 1
    status_code = None
    error = None
    try:
        target = await check_target(delivery.url, allowed_hosts)
        status_code = await send(target, body, headers)
        if 300 <= status_code < 400:
            error = f"HTTP {status_code} (redirects are not followed)"
        elif not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except TargetRefused as exc:
        error = f"Refused: the webhook URL {exc}."
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    except TimeoutError:
        error = f"No answer within {SEND_TIMEOUT_SECONDS:g} s"
    delivery.last_status_code = status_code
    delivery.last_error = error
    if error is None:
        delivery.delivered_at = now
    await delivery.save()
    if error is None:
        return Attempt(delivered=True, retry_in=None)
    if delivery.attempts >= MAX_ATTEMPTS:
        return Attempt(delivered=False, retry_in=None)
    return Attempt(delivered=False, retry_in=retry_base_seconds * 2 ** (delivery.attempts - 1))
