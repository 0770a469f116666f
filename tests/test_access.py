"""The customer scope of each role (SPEC.md: roles), and never another partner's."""

from __future__ import annotations

from app.config import Settings
from app.db import fetch_all
from app.domain.access import Viewer, customer_scope, visible_admins, visible_customers
from app.models.enums import AdminRole
from tests import factories


async def test_each_role_sees_exactly_the_customers_the_role_table_gives_it(db: Settings) -> None:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    admin, sales = team[AdminRole.ADMIN].admin, team[AdminRole.SALES_ADMIN].admin

    assigned_to_admin = await factories.customer(northwind, "Assigned to admin")
    assigned_to_sales = await factories.customer(northwind, "Assigned to sales")
    created_by_sales = await factories.customer(northwind, "Created by sales", created_by=sales)
    unassigned = await factories.customer(northwind, "Unassigned")
    foreign = await factories.customer(contoso, "Contoso customer")
    foreign_admin = (await factories.team(contoso))[AdminRole.ADMIN].admin
    await factories.assign(admin, assigned_to_admin)
    await factories.assign(sales, assigned_to_sales)
    await factories.assign(sales, created_by_sales)  # assigned and created: counted once
    await factories.assign(foreign_admin, foreign)

    everyone = {assigned_to_admin.id, assigned_to_sales.id, created_by_sales.id, unassigned.id}
    expected = {
        AdminRole.FULL_ADMIN: everyone,
        AdminRole.READ_ONLY_ADMIN: everyone,
        AdminRole.SALES_FULL_ADMIN: everyone,
        AdminRole.ADMIN: {assigned_to_admin.id},
        AdminRole.SALES_ADMIN: {assigned_to_sales.id, created_by_sales.id},
    }
    for role, member in team.items():
        viewer = Viewer(admin=member.admin, partner=northwind)
        ids = await visible_customers(viewer).values_list("id", flat=True)
        assert sorted(ids) == sorted(expected[role]), role
        assert await visible_customers(viewer).count() == len(expected[role]), role


async def test_an_admin_assigned_to_another_partners_customer_still_sees_nothing_of_it(
    db: Settings,
) -> None:
    """Even a stray assignment row across partners does not open the other tenant."""
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    admin = await factories.admin(northwind, AdminRole.ADMIN)
    foreign = await factories.customer(contoso)
    await factories.assign(admin.admin, foreign)
    viewer = Viewer(admin=admin.admin, partner=northwind)
    assert await visible_customers(viewer).count() == 0
    # The SQL form (the list, analytics, reports) holds the same partner condition.
    scope = customer_scope(viewer)
    assert await fetch_all(f"SELECT c.id FROM customer c WHERE {scope.text}", scope.params) == []


async def test_a_sales_admin_never_sees_customers_created_by_another_admins_trial(
    db: Settings,
) -> None:
    """A customer "created by its trials" means by this SALES_ADMIN's own trials,
    in either form of the scope."""
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    sales = team[AdminRole.SALES_ADMIN].admin
    other_sales = (await factories.admin(northwind, AdminRole.SALES_ADMIN)).admin
    mine = await factories.customer(northwind, "Mine", created_by=sales)
    for creator in (other_sales, team[AdminRole.FULL_ADMIN].admin, team[AdminRole.ADMIN].admin):
        await factories.customer(northwind, f"By {creator.email}", created_by=creator)
    await factories.customer(contoso, "Contoso, by our sales admin (stray)", created_by=sales)
    viewer = Viewer(admin=sales, partner=northwind)
    assert await visible_customers(viewer).values_list("id", flat=True) == [mine.id]
    scope = customer_scope(viewer)
    rows = await fetch_all(f"SELECT c.id FROM customer c WHERE {scope.text}", scope.params)
    assert [r["id"] for r in rows] == [mine.id]


async def test_admins_list_holds_only_the_viewers_partner(db: Settings) -> None:
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    ours = await factories.team(northwind)
    await factories.team(contoso)
    viewer = Viewer(admin=ours[AdminRole.READ_ONLY_ADMIN].admin, partner=northwind)
    emails = set(await visible_admins(viewer).values_list("email", flat=True))
    assert emails == {member.admin.email for member in ours.values()}


async def test_the_sql_scope_and_the_queryset_scope_agree_for_every_role(db: Settings) -> None:
    """Raw queries use customer_scope(), the ORM uses visible_customers(): same rule."""
    northwind = await factories.partner("Northwind Partners", "northwind.example")
    contoso = await factories.partner("Contoso Partners", "contoso.example")
    team = await factories.team(northwind)
    await factories.team(contoso)
    customers = [await factories.customer(northwind) for _ in range(6)]
    await factories.customer(contoso)
    await factories.assign(team[AdminRole.ADMIN].admin, customers[0])
    await factories.assign(team[AdminRole.SALES_ADMIN].admin, customers[1])
    await factories.assign(team[AdminRole.SALES_ADMIN].admin, customers[2])
    from app.models.customers import Customer

    await Customer.filter(id__in=[customers[2].id, customers[3].id]).update(
        created_by_id=team[AdminRole.SALES_ADMIN].admin.id
    )
    for role, member in team.items():
        viewer = Viewer(admin=member.admin, partner=northwind)
        scope = customer_scope(viewer)
        rows = await fetch_all(f"SELECT c.id FROM customer c WHERE {scope.text}", scope.params)
        via_sql = sorted(r["id"] for r in rows)
        via_orm = sorted(await visible_customers(viewer).values_list("id", flat=True))
        assert via_sql == via_orm, role
