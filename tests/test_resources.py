"""The Resources list is reference data of every install: `partnerhub migrate`
stores it (one copy however often it runs, and an existing install gains it on
its next migrate), the demo keeps that one copy, and `resources` filters it by
section, category and search."""

from __future__ import annotations

from pathlib import Path

import httpx

from app.config import Settings
from app.db import apply_migrations, close_database, fetch_all, open_database
from app.domain.resources import REFERENCE_RESOURCES
from app.models.enums import AdminRole
from app.models.resources import Resource
from tests import factories
from tests.cli_process import cli_env, run_cli
from tests.graphql_client import data, gql

QUERY = """query($s: String, $x: String, $c: String) {
  resources(search: $s, section: $x, category: $c) { title url section category description } }"""


async def stored_resources() -> list[dict]:
    return await fetch_all(
        "SELECT title, url, section, category, description, position FROM resource ORDER BY id"
    )


def as_listed() -> list[dict]:
    return [
        {
            "title": r.title,
            "url": r.url,
            "section": r.section.value,
            "category": r.category,
            "description": r.description,
            "position": n,
        }
        for n, r in enumerate(REFERENCE_RESOURCES)
    ]


async def test_migrate_stores_the_resources_once_and_an_older_install_gains_them(
    fresh_database_url: str, tmp_path: Path
) -> None:
    # The real command, twice: one copy of every resource.
    env = cli_env(fresh_database_url, tmp_path)
    for _ in range(2):
        result = run_cli(["migrate"], env)
        assert result.returncode == 0, result.stderr
    settings = Settings(DATABASE_URL=fresh_database_url)
    await open_database(settings)
    try:
        rows = await stored_resources()
        assert sorted(rows, key=lambda r: r["position"]) == as_listed()
        assert len({r["url"] for r in rows}) == len(REFERENCE_RESOURCES) == len(rows)

        # An install from before: only some resources, one of them stale, one stored
        # twice (as its demo did), and one that its operator added by hand.
        first, second, *rest = REFERENCE_RESOURCES
        await Resource.filter(url__in=[r.url for r in rest]).delete()
        await Resource.filter(url=first.url).update(title="Old title", position=7)
        await Resource.create(
            title=second.title, url=second.url, section=second.section, position=1
        )
        await Resource.create(
            title="Our wiki", url="https://wiki.example/partner", section="GENERAL", position=99
        )
    finally:
        await close_database()

    assert await apply_migrations(settings) == []  # no schema change, reference rows only
    await open_database(settings)
    try:
        rows = await stored_resources()
        ours = [r for r in rows if r["url"] == "https://wiki.example/partner"]
        assert len(ours) == 1 and ours[0]["title"] == "Our wiki"
        reference = sorted((r for r in rows if r not in ours), key=lambda r: r["position"])
        assert reference == as_listed()
    finally:
        await close_database()


async def test_the_demo_keeps_the_one_copy_migrate_stored(db: Settings) -> None:
    from app.demo import load_demo

    assert await stored_resources() == as_listed()  # the `db` fixture ran what migrate runs
    await load_demo(24, seed=1)
    assert await stored_resources() == as_listed()


async def test_resources_filter_by_category_section_and_search(
    client: httpx.AsyncClient, db: Settings
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.admin(org, AdminRole.READ_ONLY_ADMIN)).token

    async def titles(**variables: str) -> list[str]:
        return [r["title"] for r in (await data(client, token, QUERY, variables))["resources"]]

    def listed(keep) -> list[str]:  # in section order, then the list's order
        order = ["QUICK_LINK", "FEATURED", "GENERAL"]
        kept = [(order.index(r.section.value), n, r) for n, r in enumerate(REFERENCE_RESOURCES)]
        return [r.title for _, _, r in sorted(kept) if keep(r)]

    categories = {r.category for r in REFERENCE_RESOURCES}
    assert len(categories) > 5
    for category in categories:
        assert await titles(c=category) == listed(lambda r, c=category: r.category == c)
    analytics = listed(lambda r: r.category == "Analytics")
    assert len(analytics) == 2
    # Whatever the case, spaces around it ignored.
    assert await titles(c="  aNaLyTiCs ") == analytics
    # Not a part of a category: "Analytic" names none.
    assert await titles(c="Analytic") == []
    assert await titles(c="No such category") == []
    # Beside the other filters (AND).
    assert await titles(c="Analytics", x="FEATURED") == analytics
    assert await titles(c="Analytics", x="GENERAL") == []
    assert await titles(c="Analytics", s="churn") == ["Subscription analytics"]
    assert await titles(c="Support", s="helpdesk") == ["Partner Helpdesk"]
    # The fields of a row as listed.
    [helpdesk] = (await data(client, token, QUERY, {"c": "support"}))["resources"]
    assert helpdesk == {
        "title": "Partner Helpdesk",
        "url": "https://help.webex.com/partner-helpdesk",
        "section": "QUICK_LINK",
        "category": "Support",
        "description": "Contact the Partner Helpdesk for Webex Calling and Contact Center.",
    }

    for bad, message in (
        ("", "`category` must not be empty"),
        ("   ", "`category` must not be empty"),
        ("x" * 101, "`category` is at most 100 characters"),
    ):
        answer = (await gql(client, token, QUERY, {"c": bad})).json()
        assert answer["data"] is None
        assert message in answer["errors"][0]["message"]
