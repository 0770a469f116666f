"""Every scope rule of app/domain/access.py, for every role, through its
queryset, its SQL form where it has one, and the GraphQL API.

Each rule is checked both ways: what a viewer must see, and, next to it, what
it must not: rows of another admin of the same partner (assigned to it,
created by it, requested by it), rows of another partner, and stray rows that
cross partners (an assignment of our admin to another partner's customer, a
customer of another partner whose `created_by` is our admin, another
partner's report or schedule naming our admin). The expected sets are written
by hand from the role table of SPEC.md, never computed by the product.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
import pytest
from tortoise.models import Model

from app.config import Settings
from app.db import fetch_all
from app.domain.access import (
    Viewer,
    assigned_to_viewer,
    customer_scope,
    managed_customers,
    visible_admins,
    visible_customers,
    visible_organization,
    visible_reports,
    visible_schedules,
    visible_templates,
)
from app.domain.ids import encode_global_id
from app.domain.sql import Sql
from app.models.admins import Admin, ExternalAdminGrant
from app.models.customers import Customer
from app.models.enums import (
    AdminRole,
    Region,
    ReportFrequency,
    ReportStatus,
    ReportTemplateKind,
    ReportType,
)
from app.models.organization import PartnerOrganization
from app.models.reports import Report, ReportSchedule, ReportTemplate
from tests import factories
from tests.factories import ADMIN, FULL, READ_ONLY, SALES, SALES_FULL
from tests.graphql_client import data

# The viewers: Northwind's five roles, a second ADMIN and SALES_ADMIN of
# Northwind (whose rows the first ones must not see), and Contoso's five roles.
VIEWERS: dict[str, tuple[str, AdminRole]] = {
    "full": ("northwind", FULL),
    "admin": ("northwind", ADMIN),
    "read_only": ("northwind", READ_ONLY),
    "sales_full": ("northwind", SALES_FULL),
    "sales": ("northwind", SALES),
    "admin2": ("northwind", ADMIN),
    "sales2": ("northwind", SALES),
    "contoso full": ("contoso", FULL),
    "contoso admin": ("contoso", ADMIN),
    "contoso read_only": ("contoso", READ_ONLY),
    "contoso sales_full": ("contoso", SALES_FULL),
    "contoso sales": ("contoso", SALES),
}

# name: (partner, admins assigned to it, admin whose trial created it)
CUSTOMERS: dict[str, tuple[str, tuple[str, ...], str | None]] = {
    "assigned to admin": ("northwind", ("admin",), None),
    "assigned to admin2": ("northwind", ("admin2",), None),
    "assigned to admin and sales": ("northwind", ("admin", "sales"), None),
    "assigned to sales": ("northwind", ("sales",), None),
    "created by sales": ("northwind", (), "sales"),
    "created by and assigned to sales": ("northwind", ("sales",), "sales"),
    "created by sales2": ("northwind", (), "sales2"),
    # Two assignments, neither the creator's: one row each in a join.
    "created by sales, assigned to admin and admin2": ("northwind", ("admin", "admin2"), "sales"),
    "created by full, assigned to nobody": ("northwind", (), "full"),
    "created by admin, assigned to nobody": ("northwind", (), "admin"),
    "created by sales_full": ("northwind", (), "sales_full"),
    "assigned to full (stray)": ("northwind", ("full",), None),
    "unassigned": ("northwind", (), None),
    # Another partner's customers, some with stray rows naming our admins.
    "contoso: assigned to its admin and ours": ("contoso", ("contoso admin", "admin"), None),
    "contoso: assigned to our sales": ("contoso", ("sales",), None),
    "contoso: created by our sales": ("contoso", (), "sales"),
    "contoso: created by our admin2": ("contoso", ("admin2",), "admin2"),
    "contoso: created by its sales": ("contoso", (), "contoso sales"),
    "contoso: unassigned": ("contoso", (), None),
}
NORTHWIND_CUSTOMERS = {n for n, (p, _, _) in CUSTOMERS.items() if p == "northwind"}
CONTOSO_CUSTOMERS = {n for n, (p, _, _) in CUSTOMERS.items() if p == "contoso"}

CUSTOMERS_SEEN: dict[str, set[str]] = {
    "full": NORTHWIND_CUSTOMERS,
    "read_only": NORTHWIND_CUSTOMERS,
    "sales_full": NORTHWIND_CUSTOMERS,
    "admin": {
        "assigned to admin",
        "assigned to admin and sales",
        "created by sales, assigned to admin and admin2",
    },
    "admin2": {"assigned to admin2", "created by sales, assigned to admin and admin2"},
    "sales": {
        "assigned to admin and sales",
        "assigned to sales",
        "created by sales",
        "created by and assigned to sales",
        "created by sales, assigned to admin and admin2",
    },
    "sales2": {"created by sales2"},
    "contoso full": CONTOSO_CUSTOMERS,
    "contoso read_only": CONTOSO_CUSTOMERS,
    "contoso sales_full": CONTOSO_CUSTOMERS,
    "contoso admin": {"contoso: assigned to its admin and ours"},
    "contoso sales": {"contoso: created by its sales"},
}

# name: (partner, requesting admin or None for a scheduled run / a deleted admin)
REPORTS: dict[str, tuple[str, str | None]] = {
    "by full": ("northwind", "full"),
    "by admin": ("northwind", "admin"),
    "by read_only": ("northwind", "read_only"),
    "by sales_full": ("northwind", "sales_full"),
    "by sales": ("northwind", "sales"),
    "by admin2": ("northwind", "admin2"),
    "scheduled run": ("northwind", None),
    "contoso by its full": ("contoso", "contoso full"),
    "contoso by its admin": ("contoso", "contoso admin"),
    "contoso naming our admin (stray)": ("contoso", "admin"),
    "contoso naming our full (stray)": ("contoso", "full"),
}
NORTHWIND_REPORTS = {n for n, (p, _) in REPORTS.items() if p == "northwind"}
CONTOSO_REPORTS = {n for n, (p, _) in REPORTS.items() if p == "contoso"}
REPORTS_SEEN: dict[str, set[str]] = {
    "full": NORTHWIND_REPORTS,
    "read_only": NORTHWIND_REPORTS,
    "sales_full": NORTHWIND_REPORTS,
    "admin": {"by admin"},
    "admin2": {"by admin2"},
    "sales": {"by sales"},
    "sales2": set(),
    "contoso full": CONTOSO_REPORTS,
    "contoso read_only": CONTOSO_REPORTS,
    "contoso sales_full": CONTOSO_REPORTS,
    "contoso admin": {"contoso by its admin"},
    "contoso sales": set(),
}

# name: (partner, creating admin or None when its creator was deleted)
SCHEDULES: dict[str, tuple[str, str | None]] = {
    "by full": ("northwind", "full"),
    "by admin (then demoted)": ("northwind", "admin"),
    "by sales (then demoted)": ("northwind", "sales"),
    "by admin2 (then demoted)": ("northwind", "admin2"),
    "creator deleted": ("northwind", None),
    "contoso by its full": ("contoso", "contoso full"),
    "contoso naming our admin (stray)": ("contoso", "admin"),
    "contoso naming our full (stray)": ("contoso", "full"),
}
NORTHWIND_SCHEDULES = {n for n, (p, _) in SCHEDULES.items() if p == "northwind"}
CONTOSO_SCHEDULES = {n for n, (p, _) in SCHEDULES.items() if p == "contoso"}
SCHEDULES_SEEN: dict[str, set[str]] = {
    "full": NORTHWIND_SCHEDULES,
    "read_only": NORTHWIND_SCHEDULES,
    "sales_full": NORTHWIND_SCHEDULES,
    "admin": {"by admin (then demoted)"},
    "admin2": {"by admin2 (then demoted)"},
    "sales": {"by sales (then demoted)"},
    "sales2": set(),
    "contoso full": CONTOSO_SCHEDULES,
    "contoso read_only": CONTOSO_SCHEDULES,
    "contoso sales_full": CONTOSO_SCHEDULES,
    "contoso admin": set(),
    "contoso sales": set(),
}

DEFAULT_TEMPLATES = {
    "Calling usage detail",
    "Devices",
    "Phone numbers",
    "Webex App versions",
    "Subscription details",
    "Customer list",
}
# CUSTOM templates: (partner, name, creating admin)
CUSTOM_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "northwind by full": ("northwind", "Phones by site", "full"),
    "northwind by admin": ("northwind", "My devices", "admin"),
    "northwind by sales": ("northwind", "Sales numbers", "sales"),
    "contoso same name": ("contoso", "Phones by site", "contoso full"),
    "contoso by its admin": ("contoso", "Contoso only", "contoso admin"),
    "contoso naming our admin (stray)": ("contoso", "Stray", "admin"),
}
NORTHWIND_TEMPLATES = DEFAULT_TEMPLATES | {"Phones by site", "My devices", "Sales numbers"}
CONTOSO_TEMPLATES = DEFAULT_TEMPLATES | {"Phones by site", "Contoso only", "Stray"}


@dataclass
class ScopeWorld:
    partners: dict[str, PartnerOrganization]
    viewers: dict[str, factories.AdminWithToken]
    customers: dict[str, Customer] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)
    schedules: dict[str, ReportSchedule] = field(default_factory=dict)
    templates: dict[str, ReportTemplate] = field(default_factory=dict)

    def viewer(self, key: str) -> Viewer:
        partner, _ = VIEWERS[key]
        return Viewer(admin=self.viewers[key].admin, partner=self.partners[partner])

    def token(self, key: str) -> str:
        return self.viewers[key].token

    def admin_id(self, key: str | None) -> int | None:
        return self.viewers[key].admin.id if key else None


async def build_scope_world() -> ScopeWorld:
    # Contoso first, so that Northwind's ids differ from Contoso's and from its own
    # partner id (a rule that compared the wrong id would show).
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    partners = {"northwind": northwind, "contoso": contoso}
    viewers = {}
    for key, (partner, role) in sorted(VIEWERS.items(), key=lambda kv: kv[1][0]):
        viewers[key] = await factories.admin(partners[partner], role)
    w = ScopeWorld(partners, viewers)
    regions = [Region.US, Region.EU]
    for n, (name, (partner, assigned, created_by)) in enumerate(CUSTOMERS.items()):
        creator = viewers[created_by].admin if created_by else None
        customer = await factories.customer(partners[partner], name, regions[n % 2], creator)
        for key in assigned:
            await factories.assign(viewers[key].admin, customer)
        w.customers[name] = customer

    template = await ReportTemplate.get(partner_id=None, report_type=ReportType.DEVICES)
    for key, (partner, name, creator) in CUSTOM_TEMPLATES.items():
        w.templates[key] = await ReportTemplate.create(
            partner=partners[partner],
            name=name,
            name_key=name.lower(),
            kind=ReportTemplateKind.CUSTOM,
            report_type=ReportType.DEVICES,
            column_keys=["mac"],
            created_by_id=w.admin_id(creator),
        )
    for name, (partner, creator) in SCHEDULES.items():
        w.schedules[name] = await ReportSchedule.create(
            partner=partners[partner],
            template=template,
            frequency=ReportFrequency.DAILY,
            hour_utc=6,
            created_by_id=w.admin_id(creator),
        )
    for name, (partner, requester) in REPORTS.items():
        w.reports[name] = await Report.create(
            partner=partners[partner],
            template=template,
            status=ReportStatus.QUEUED,
            requested_by_id=w.admin_id(requester),
            schedule=w.schedules["by full"] if name == "scheduled run" else None,
        )
    return w


@pytest.fixture
async def world(db: Settings) -> ScopeWorld:
    return await build_scope_world()


def names_of(objects: Mapping[str, Model], ids: list[int]) -> set[str]:
    by_id = {o.pk: name for name, o in objects.items()}
    return {by_id[i] for i in ids}


def aliased(
    field: str, type_name: str, objects: Mapping[str, Model], selection: str
) -> tuple[str, dict[str, str]]:
    """One query asking `field(id:)` for every object, under an alias per object."""
    aliases = {f"o{n}": name for n, name in enumerate(objects)}
    parts = [
        f'{alias}: {field}(id: "{encode_global_id(type_name, objects[name].pk)}") {{ {selection} }}'
        for alias, name in aliases.items()
    ]
    return "{ " + " ".join(parts) + " }", aliases


# ------------------------------------------------------------------ customers


async def test_visible_customers_gives_each_role_exactly_its_customers(world: ScopeWorld) -> None:
    for key, expected in CUSTOMERS_SEEN.items():
        query = visible_customers(world.viewer(key))
        ids = await query.values_list("id", flat=True)
        assert len(ids) == len(set(ids)), key  # assigned and created: listed once
        assert names_of(world.customers, ids) == expected, key
        assert await query.count() == len(expected), key


async def _sql_scope_ids(scope: Sql) -> list[int]:
    rows = await fetch_all(f"SELECT c.id FROM customer c WHERE {scope.text}", scope.params)
    return [r["id"] for r in rows]


async def test_the_sql_customer_scope_gives_each_role_exactly_its_customers(
    world: ScopeWorld,
) -> None:
    """customer_scope() is what every raw query (the list, analytics, reports)
    starts from: it must hold the same rule, stray rows included."""
    for key, expected in CUSTOMERS_SEEN.items():
        scope = customer_scope(world.viewer(key))
        assert names_of(world.customers, await _sql_scope_ids(scope)) == expected, key
        count = await fetch_all(
            f"SELECT COUNT(*) AS n FROM customer c WHERE {scope.text}", scope.params
        )
        assert int(count[0]["n"]) == len(expected), key


async def test_the_sql_customer_scope_keeps_its_rule_inside_a_larger_condition(
    world: ScopeWorld,
) -> None:
    """Raw queries add conditions to the scope, with `&` or written around its text
    (report rows: `WHERE seen.newest = 1 AND {where.text}`): the scope's own OR
    must not leak out of it."""
    for key, expected in CUSTOMERS_SEEN.items():
        for region in (Region.US, Region.EU):
            in_region = {n for n in expected if world.customers[n].region == region}
            scope = customer_scope(world.viewer(key))
            combined = scope & Sql("c.region = ?", (region.value,))
            assert names_of(world.customers, await _sql_scope_ids(combined)) == in_region, key
            written = Sql(f"c.region = ? AND {scope.text}", (region.value, *scope.params))
            assert names_of(world.customers, await _sql_scope_ids(written)) == in_region, key


async def test_assigned_to_viewer_holds_only_the_viewers_own_assignments_in_scope(
    world: ScopeWorld,
) -> None:
    """Within the scope, the customers assigned to the viewer itself (never another
    admin's, never another partner's). Being assigned says nothing of `managedBy`:
    an own partner's customer is PARTNER_ORGANIZATION whoever is assigned to it."""
    expected = {
        "full": {"assigned to full (stray)"},
        "admin": {
            "assigned to admin",
            "assigned to admin and sales",
            "created by sales, assigned to admin and admin2",
        },
        "admin2": {"assigned to admin2", "created by sales, assigned to admin and admin2"},
        "sales": {
            "assigned to admin and sales",
            "assigned to sales",
            "created by and assigned to sales",
        },
        "sales2": set(),
        "read_only": set(),
        "contoso admin": {"contoso: assigned to its admin and ours"},
    }
    for key, names in expected.items():
        viewer = world.viewer(key)
        scope = customer_scope(viewer) & assigned_to_viewer(viewer)
        assert names_of(world.customers, await _sql_scope_ids(scope)) == names, key


CUSTOMERS_QUERY = """{ customers(first: 100) { totalCount nodes { name } } }"""


async def test_the_customers_list_gives_each_role_exactly_its_customers(
    client: httpx.AsyncClient, world: ScopeWorld
) -> None:
    for key, expected in CUSTOMERS_SEEN.items():
        answer = (await data(client, world.token(key), CUSTOMERS_QUERY))["customers"]
        assert {n["name"] for n in answer["nodes"]} == expected, key
        assert answer["totalCount"] == len(expected), key


async def test_a_customer_by_id_is_null_outside_the_scope_for_every_role(
    client: httpx.AsyncClient, world: ScopeWorld
) -> None:
    query, aliases = aliased("customer", "Customer", world.customers, "name")
    for key, expected in CUSTOMERS_SEEN.items():
        answer = await data(client, world.token(key), query)
        seen = {aliases[alias] for alias, value in answer.items() if value is not None}
        assert seen == expected, key


async def test_assigned_customers_of_an_admin_stay_within_the_viewers_scope(
    client: httpx.AsyncClient, world: ScopeWorld
) -> None:
    """The Admins list shows each admin's assigned customers through the SQL scope:
    a stray assignment to another partner's customer never shows."""
    query = """{ admins(first: 100) { nodes { email
      assignedCustomers(first: 50) { totalCount nodes { name } } } } }"""
    expected = {
        "full": {"assigned to full (stray)"},
        "admin": {
            "assigned to admin",
            "assigned to admin and sales",
            "created by sales, assigned to admin and admin2",
        },
        "admin2": {"assigned to admin2", "created by sales, assigned to admin and admin2"},
        "sales": {
            "assigned to admin and sales",
            "assigned to sales",
            "created by and assigned to sales",
        },
    }
    answer = await data(client, world.token("full"), query)
    by_email = {n["email"]: n["assignedCustomers"] for n in answer["admins"]["nodes"]}
    for key, names in expected.items():
        got = by_email[world.viewers[key].admin.email]
        assert {n["name"] for n in got["nodes"]} == names, key
        assert got["totalCount"] == len(names), key
    # An ADMIN viewer sees, for itself and for the SALES_ADMIN, only its own customers.
    answer = await data(client, world.token("admin"), query)
    by_email = {n["email"]: n["assignedCustomers"] for n in answer["admins"]["nodes"]}
    assert {n["name"] for n in by_email[world.viewers["admin"].admin.email]["nodes"]} == {
        "assigned to admin",
        "assigned to admin and sales",
        "created by sales, assigned to admin and admin2",
    }
    assert {n["name"] for n in by_email[world.viewers["sales"].admin.email]["nodes"]} == {
        "assigned to admin and sales"
    }


# ------------------------------------------------------------------ admins and organization


def _admins_of(partner: str) -> set[str]:
    return {key for key, (p, _) in VIEWERS.items() if p == partner}


async def test_visible_admins_are_exactly_the_partners_admins_for_every_role(
    client: httpx.AsyncClient, world: ScopeWorld
) -> None:
    for key, (partner, _) in VIEWERS.items():
        expected = {world.viewers[k].admin.email for k in _admins_of(partner)}
        emails = await visible_admins(world.viewer(key)).values_list("email", flat=True)
        assert set(emails) == expected and len(emails) == len(expected), key
        answer = await data(
            client, world.token(key), "{ admins(first: 100) { totalCount nodes { email } } }"
        )
        assert {n["email"] for n in answer["admins"]["nodes"]} == expected, key
        assert answer["admins"]["totalCount"] == len(expected), key
    other = world.viewers["contoso full"].admin
    assert await visible_admins(world.viewer("full")).get_or_none(id=other.id) is None
    node = await data(
        client,
        world.token("full"),
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": encode_global_id("Admin", other.id)},
    )
    assert node == {"node": None}


async def test_a_viewer_sees_its_own_organization_only(world: ScopeWorld) -> None:
    for key, (partner, _) in VIEWERS.items():
        viewer = world.viewer(key)
        for name, org in world.partners.items():
            assert visible_organization(viewer, org.id) is (name == partner), key


# ------------------------------------------------------------------ reports


async def test_visible_reports_give_each_role_exactly_its_reports(world: ScopeWorld) -> None:
    for key, expected in REPORTS_SEEN.items():
        query = visible_reports(world.viewer(key))
        ids = await query.values_list("id", flat=True)
        assert names_of(world.reports, ids) == expected, key
        assert await query.count() == len(expected), key


async def test_the_reports_list_and_report_by_id_follow_the_same_rule(
    client: httpx.AsyncClient, world: ScopeWorld
) -> None:
    by_id, aliases = aliased("report", "Report", world.reports, "id")
    for key, expected in REPORTS_SEEN.items():
        answer = (
            await data(
                client, world.token(key), "{ reports(first: 100) { totalCount nodes { id } } }"
            )
        )["reports"]
        listed = {
            name
            for name, report in world.reports.items()
            if encode_global_id("Report", report.id) in {n["id"] for n in answer["nodes"]}
        }
        assert listed == expected, key
        assert answer["totalCount"] == len(expected), key
        found = await data(client, world.token(key), by_id)
        assert {aliases[a] for a, v in found.items() if v is not None} == expected, key


# ------------------------------------------------------------------ schedules


async def test_visible_schedules_give_each_role_exactly_its_schedules(world: ScopeWorld) -> None:
    for key, expected in SCHEDULES_SEEN.items():
        query = visible_schedules(world.viewer(key))
        ids = await query.values_list("id", flat=True)
        assert names_of(world.schedules, ids) == expected, key
        assert await query.count() == len(expected), key


async def test_the_report_schedules_list_and_node_follow_the_same_rule(
    client: httpx.AsyncClient, world: ScopeWorld
) -> None:
    by_id, aliases = aliased("node", "ReportSchedule", world.schedules, "id")
    query = "{ reportSchedules(first: 100) { totalCount nodes { id } } }"
    for key, expected in SCHEDULES_SEEN.items():
        answer = (await data(client, world.token(key), query))["reportSchedules"]
        ids = {n["id"] for n in answer["nodes"]}
        listed = {
            name
            for name, schedule in world.schedules.items()
            if encode_global_id("ReportSchedule", schedule.id) in ids
        }
        assert listed == expected, key
        assert answer["totalCount"] == len(expected), key
        found = await data(client, world.token(key), by_id)
        assert {aliases[a] for a, v in found.items() if v is not None} == expected, key


# ------------------------------------------------------------------ templates


async def test_visible_templates_are_the_defaults_and_the_partners_custom_ones(
    client: httpx.AsyncClient, world: ScopeWorld
) -> None:
    for key, (partner, _) in VIEWERS.items():
        expected = NORTHWIND_TEMPLATES if partner == "northwind" else CONTOSO_TEMPLATES
        templates = await visible_templates(world.viewer(key))
        assert {t.name for t in templates} == expected, key
        assert len(templates) == len(expected), key
        custom = {t.id for t in templates if t.kind == ReportTemplateKind.CUSTOM}
        assert custom == {
            world.templates[k].id for k, (p, _, _) in CUSTOM_TEMPLATES.items() if p == partner
        }, key
        answer = await data(client, world.token(key), "{ reportTemplates { id name kind } }")
        listed = answer["reportTemplates"]
        assert {t["name"] for t in listed} == expected and len(listed) == len(expected), key
        assert {t["id"] for t in listed if t["kind"] == "CUSTOM"} == {
            encode_global_id("ReportTemplate", i) for i in custom
        }, key


# ------------------------------------------------------------------ the world itself


async def test_the_world_holds_the_stray_rows_the_rules_must_ignore(world: ScopeWorld) -> None:
    """Guards the negative cases above: the rows they rely on exist as described."""
    admin = world.viewers["admin"].admin
    sales = world.viewers["sales"].admin
    contoso = world.partners["contoso"]
    assert await Customer.filter(partner=contoso, assignments__admin_id=admin.id).exists()
    assert await Customer.filter(partner=contoso, created_by_id=sales.id).exists()
    assert await Report.filter(partner=contoso, requested_by_id=admin.id).exists()
    assert await ReportSchedule.filter(partner=contoso, created_by_id=admin.id).exists()
    northwind = world.partners["northwind"]
    admin_ids = set(await Admin.filter(partner=northwind).values_list("id", flat=True))
    assert len(admin_ids) == 7 and northwind.id not in admin_ids


# ------------------------------------------------------------------ external-admin grants

# customer: the viewers made its external admins by the customer's partner's FULL_ADMIN.
# Contoso's grants go to Northwind's admins whatever their role (sales2 sees nothing
# else of Contoso's), and the other way round; a stray row names our admin already.
GRANTS: dict[str, tuple[str, ...]] = {
    "contoso: unassigned": ("admin", "read_only", "sales2", "full"),
    "contoso: created by our sales": ("sales",),
    "contoso: assigned to our sales": ("sales_full",),
    "unassigned": ("contoso admin", "contoso full"),
    "assigned to admin": ("contoso sales",),
}
GRANTED_SEEN: dict[str, set[str]] = {
    key: {name for name, keys in GRANTS.items() if key in keys} for key in CUSTOMERS_SEEN
}


async def _grant(world: ScopeWorld) -> None:
    for name, keys in GRANTS.items():
        partner = CUSTOMERS[name][0]
        granted_by = world.viewers["contoso full" if partner == "contoso" else "full"].admin
        for key in keys:
            await ExternalAdminGrant.create(
                customer=world.customers[name],
                admin=world.viewers[key].admin,
                granted_by=granted_by,
                granted_at=factories.NOW,
            )


async def test_with_grants_only_the_granted_customers_cross_partners_in_every_scope(
    world: ScopeWorld,
) -> None:
    """Queryset and SQL scope, alone and inside a larger condition: each viewer's own
    customers plus exactly its grants; what a mutation may change stays its own."""
    await _grant(world)
    for key, own in CUSTOMERS_SEEN.items():
        viewer = world.viewer(key)
        expected = own | GRANTED_SEEN[key]
        ids = await visible_customers(viewer).values_list("id", flat=True)
        assert len(ids) == len(set(ids)), key
        assert names_of(world.customers, ids) == expected, key
        managed = await managed_customers(viewer).values_list("id", flat=True)
        assert names_of(world.customers, managed) == own, key
        scope = customer_scope(viewer)
        assert names_of(world.customers, await _sql_scope_ids(scope)) == expected, key
        for region in (Region.US, Region.EU):
            in_region = {n for n in expected if world.customers[n].region == region}
            written = Sql(f"c.region = ? AND {scope.text}", (region.value, *scope.params))
            assert names_of(world.customers, await _sql_scope_ids(written)) == in_region, key


MANAGED_QUERY = """query($m: ManagedBy) { customers(first: 100, filter: {managedBy: $m}) {
  totalCount nodes { name managedBy } } }"""


async def test_with_grants_the_list_ids_and_managed_by_filters_partition_for_every_role(
    client: httpx.AsyncClient, world: ScopeWorld
) -> None:
    await _grant(world)
    query, aliases = aliased("customer", "Customer", world.customers, "name managedBy")
    for key, own in CUSTOMERS_SEEN.items():
        granted = GRANTED_SEEN[key]
        answers = {}
        for managed_by in (None, "PARTNER_ORGANIZATION", "EXTERNAL_ADMIN"):
            answer = (await data(client, world.token(key), MANAGED_QUERY, {"m": managed_by}))[
                "customers"
            ]
            assert answer["totalCount"] == len(answer["nodes"]), key
            answers[managed_by] = {n["name"]: n["managedBy"] for n in answer["nodes"]}
        assert set(answers[None]) == own | granted, key
        assert answers["PARTNER_ORGANIZATION"] == dict.fromkeys(own, "PARTNER_ORGANIZATION"), key
        assert answers["EXTERNAL_ADMIN"] == dict.fromkeys(granted, "EXTERNAL_ADMIN"), key
        by_id = await data(client, world.token(key), query)
        seen = {aliases[a]: v["managedBy"] for a, v in by_id.items() if v is not None}
        assert seen == answers[None], key


async def test_grants_change_no_other_scope(client: httpx.AsyncClient, world: ScopeWorld) -> None:
    """Admins, reports, schedules and templates stay each partner's own with grants."""
    await _grant(world)
    for key, expected in REPORTS_SEEN.items():
        ids = await visible_reports(world.viewer(key)).values_list("id", flat=True)
        assert names_of(world.reports, ids) == expected, key
    for key, expected in SCHEDULES_SEEN.items():
        ids = await visible_schedules(world.viewer(key)).values_list("id", flat=True)
        assert names_of(world.schedules, ids) == expected, key
    for key, (partner, _) in VIEWERS.items():
        expected = {world.viewers[k].admin.email for k in _admins_of(partner)}
        emails = await visible_admins(world.viewer(key)).values_list("email", flat=True)
        assert set(emails) == expected, key
        answer = await data(client, world.token(key), "{ admins(first: 100) { nodes { email } } }")
        assert {n["email"] for n in answer["admins"]["nodes"]} == expected, key
        custom = {
            t.id
            for t in await visible_templates(world.viewer(key))
            if t.kind == ReportTemplateKind.CUSTOM
        }
        assert custom == {
            world.templates[k].id for k, (p, _, _) in CUSTOM_TEMPLATES.items() if p == partner
        }, key
