"""Running report jobs in tests: a clean queue, a burst worker, and fetching a
report's file through its signed URL as `curl` would."""

from __future__ import annotations

import csv
import hashlib
import io
from urllib.parse import urlsplit

import httpx
from redis.asyncio import Redis

from app.config import Settings
from tests.graphql_client import data
from workers.settings import build_worker

REPORT_FIELDS = """
  id status rowCount error startDate endDate region createdAt startedAt finishedAt
  template { id name }
  download { url expiresAt fileName byteSize checksum }
"""


async def flush_queue(redis_url: str) -> None:
    """Forget every job of earlier tests (their report ids mean nothing here)."""
    client = Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def run_jobs(redis_url: str, settings: Settings) -> None:
    """Run every queued job to the end on a burst worker of this process."""
    worker = build_worker(redis_url, in_process=True, burst=True, settings=settings)
    try:
        await worker.async_run()
    finally:
        await worker.close()


TEMPLATE_FIELDS = (
    "id name kind reportType description supportsDateRange requiresDateRange "
    "columns { key title description }"
)


async def templates_by_type(client: httpx.AsyncClient, token: str) -> dict[str, dict]:
    """The viewer's DEFAULT templates by report type (CUSTOM ones left out)."""
    query = f"{{ reportTemplates {{ {TEMPLATE_FIELDS} }} }}"
    answer = await data(client, token, query)
    return {t["reportType"]: t for t in answer["reportTemplates"] if t["kind"] == "DEFAULT"}


async def template_ids(client: httpx.AsyncClient, token: str) -> dict[str, str]:
    return {k: t["id"] for k, t in (await templates_by_type(client, token)).items()}


async def report_of(client: httpx.AsyncClient, token: str, report_id: str) -> dict:
    query = f"query($id: ID!) {{ report(id: $id) {{ {REPORT_FIELDS} }} }}"
    return (await data(client, token, query, {"id": report_id}))["report"]


async def generate(client: httpx.AsyncClient, token: str, **input: object) -> dict:
    query = f"""mutation($input: GenerateReportInput!) {{
      generateReport(input: $input) {{
        report {{ {REPORT_FIELDS} }} userErrors {{ field message code }} }} }}"""
    return (await data(client, token, query, {"input": input}))["generateReport"]


async def download(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET the signed URL with no credentials (only its path and query matter here)."""
    parts = urlsplit(url)
    return await client.get(f"{parts.path}?{parts.query}")


def parse_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
