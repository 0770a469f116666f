"""Trials: their lifecycle rules, and the trials list. What the API reads of a
trial (the list, a mutation's answer) is a `TrialRow` of
app/domain/customer_pages.py."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from app.clock import utcnow
from app.domain.access import (
    ASSIGNABLE_ROLES,
    CANCEL_TRIAL,
    EXTEND_TRIAL,
    START_TRIAL,
    Viewer,
    managed_customers,
    visible_customers,
)
from app.domain.customer_columns import moment_of, refresh_customer_columns
from app.domain.customer_pages import TrialRow, trial_row
from app.domain.customers import EMAIL, get_managed_customer
from app.domain.errors import InvalidArgument, MutationRejected, UserError, UserErrorCode, reject
from app.domain.mutations import Audited, audit_target, run_mutation
from app.domain.pagination import Page, keyset_page
from app.models.admins import CustomerAssignment
from app.models.customers import Customer, CustomerUser
from app.models.enums import (
    LicenseType,
    Product,
    Region,
    SubscriptionKind,
    SubscriptionStatus,
    TrialStatus,
)
from app.models.subscriptions import LicenseLine, Subscription
from app.models.trials import Trial, TrialProduct

# A trial's TRIAL subscription carries the trial's own status, word for word
# (SPEC.md: a trial also appears among the customer's subscriptions). Every
# writer of either row goes through `trial_subscription_status` or
# `set_trial_status`, so the two never disagree.
TRIAL_SUBSCRIPTION_STATUS: dict[TrialStatus, SubscriptionStatus] = {
    TrialStatus.ACTIVE: SubscriptionStatus.ACTIVE,
    TrialStatus.EXPIRED: SubscriptionStatus.EXPIRED,
    TrialStatus.CONVERTED: SubscriptionStatus.CONVERTED,
    TrialStatus.CANCELLED: SubscriptionStatus.CANCELLED,
}


def trial_subscription_status(status: TrialStatus | str) -> SubscriptionStatus:
    """The status of the TRIAL subscription of a trial in `status`."""
    return TRIAL_SUBSCRIPTION_STATUS[TrialStatus(status)]


async def set_trial_status(
    trial_ids: Sequence[int], status: TrialStatus, ended_at: datetime | None, today: date
) -> None:
    """Move trials and their TRIAL subscriptions to `status` together, with their
    customers' kept columns as of `today` and their attention changes as of
    `ended_at` (call inside a transaction)."""
    await Trial.filter(id__in=list(trial_ids)).update(status=status, ended_at=ended_at)
    await Subscription.filter(trial_id__in=list(trial_ids), kind=SubscriptionKind.TRIAL).update(
        status=trial_subscription_status(status)
    )
    customer_ids = await Trial.filter(id__in=list(trial_ids)).values_list("customer_id", flat=True)
    await refresh_customer_columns(customer_ids, today, ended_at)


async def align_trial_subscriptions(today: date | None = None) -> int:
    """Give every TRIAL subscription its trial's status where an older release left
    them apart (a demo's CONVERTED trial with an EXPIRED subscription), with the
    kept columns of their customers; run by `partnerhub migrate`. Returns how
    many subscriptions changed."""
    changed: list[int] = []
    async with in_transaction():
        for trial_status, status in TRIAL_SUBSCRIPTION_STATUS.items():
            apart = Subscription.filter(
                kind=SubscriptionKind.TRIAL,
                trial_id__in=Subquery(Trial.filter(status=trial_status).values("id")),
            ).exclude(status=status)
            customer_ids = await apart.values_list("customer_id", flat=True)
            if customer_ids:
                await apart.update(status=status)
                changed += customer_ids
        await refresh_customer_columns(changed, today or utcnow().date())
    return len(changed)


async def expire_due_trials(today: date, now: datetime | None = None) -> int:
    """Move ACTIVE trials whose end date is before `today` (UTC) to EXPIRED, with
    their TRIAL subscriptions, in one transaction. Returns how many expired."""
    now = now or utcnow()
    async with in_transaction():
        due = Trial.filter(status=TrialStatus.ACTIVE, end_date__lt=today)
        trial_ids = await due.values_list("id", flat=True)
        if not trial_ids:
            return 0
        await set_trial_status(trial_ids, TrialStatus.EXPIRED, now, today)
    return len(trial_ids)


# ------------------------------------------------------------ starting ----

MIN_LICENSES, MAX_LICENSES = 1, 100_000
MAX_DURATION_DAYS = 90
MAX_EXTENSION_DAYS = 30
MAX_TOTAL_DAYS = 180
MAX_CUSTOMER_NAME = 200

# The license line a trial of each product gets.
TRIAL_LICENSE_TYPE: dict[Product, LicenseType] = {
    Product.MEETINGS: LicenseType.MEETINGS,
    Product.CALLING: LicenseType.CALLING_PROFESSIONAL,
    Product.MESSAGING: LicenseType.MESSAGING,
    Product.REAL_TIME_TRANSLATION: LicenseType.REAL_TIME_TRANSLATION,
    Product.CONTACT_CENTER: LicenseType.CONTACT_CENTER,
}


@dataclass(frozen=True)
class NewCustomer:
    name: str
    admin_email: str
    region: Region


@dataclass(frozen=True)
class TrialLicenseRequest:
    product: Product
    licenses: int


def _validate_start(
    customer_id: int | None,
    new_customer: NewCustomer | None,
    products: Sequence[TrialLicenseRequest],
    duration_days: int,
) -> list[UserError]:
    errors: list[UserError] = []
    if (customer_id is None) == (new_customer is None):
        errors.append(
            UserError(
                ("input",),
                "Give either customerId or newCustomer (one of them).",
                UserErrorCode.INVALID,
            )
        )
    if not 1 <= duration_days <= MAX_DURATION_DAYS:
        errors.append(
            UserError(
                ("input", "duration_days"),
                f"A trial lasts 1 to {MAX_DURATION_DAYS} days.",
                UserErrorCode.INVALID,
            )
        )
    if not products:
        errors.append(
            UserError(("input", "products"), "Choose at least one product.", UserErrorCode.INVALID)
        )
    seen: set[Product] = set()
    for n, item in enumerate(products):
        if item.product in seen:
            errors.append(
                UserError(
                    ("input", "products", str(n), "product"),
                    f"{item.product.value} is listed twice.",
                    UserErrorCode.INVALID,
                )
            )
        seen.add(item.product)
        if not MIN_LICENSES <= item.licenses <= MAX_LICENSES:
            errors.append(
                UserError(
                    ("input", "products", str(n), "licenses"),
                    f"Licenses are {MIN_LICENSES} to {MAX_LICENSES:,} per product.",
                    UserErrorCode.INVALID,
                )
            )
    if new_customer is not None:
        name = " ".join(new_customer.name.split())
        if not 1 <= len(name) <= MAX_CUSTOMER_NAME:
            errors.append(
                UserError(
                    ("input", "new_customer", "name"),
                    f"A customer name is 1 to {MAX_CUSTOMER_NAME} characters.",
                    UserErrorCode.INVALID,
                )
            )
        if not EMAIL.match(new_customer.admin_email.strip().lower()):
            errors.append(
                UserError(
                    ("input", "new_customer", "admin_email"),
                    "The admin email is not an email address.",
                    UserErrorCode.INVALID,
                )
            )
    return errors


def _new_trial_id() -> str:
    return f"ET-{secrets.randbelow(10**12):012d}"


async def start_trial(
    viewer: Viewer,
    *,
    customer_id: int | None,
    new_customer: NewCustomer | None,
    products: Sequence[TrialLicenseRequest],
    duration_days: int,
    today: date | None = None,
) -> TrialRow:
    """Start a trial for a customer without an ongoing one, or for a new customer."""
    now = utcnow()
    day = today or now.date()

    async def work() -> Audited[TrialRow]:
        errors = _validate_start(customer_id, new_customer, products, duration_days)
        if errors:
            raise MutationRejected(errors)
        if new_customer is not None:
            customer = await _create_customer(viewer, new_customer, now)
        else:
            found = await get_managed_customer(viewer, customer_id)
            if found is None:
                raise reject(("input", "customer_id"), "No such customer.", UserErrorCode.NOT_FOUND)
            # Lock the customer so two starts at once cannot both pass the check.
            customer = await Customer.select_for_update().get(id=found.id)
            if await Trial.filter(
                customer_id=customer.id, status=TrialStatus.ACTIVE, end_date__gte=day
            ).exists():
                raise reject(
                    ("input", "customer_id"),
                    f"{customer.name} already has an ongoing trial.",
                    UserErrorCode.CONFLICT,
                )
        end = day + timedelta(days=duration_days)
        trial = await Trial.create(
            customer_id=customer.id,
            trial_id=_new_trial_id(),
            status=TrialStatus.ACTIVE,
            start_date=day,
            end_date=end,
            started_by_id=viewer.admin.id,
        )
        subscription = await Subscription.create(
            customer_id=customer.id,
            subscription_id=trial.trial_id,
            kind=SubscriptionKind.TRIAL,
            status=trial_subscription_status(trial.status),
            start_date=day,
            end_date=end,
            auto_renew=False,
            added_at=now,
            trial_id=trial.id,
        )
        for item in products:
            await TrialProduct.create(
                trial_id=trial.id, product=item.product, licenses=item.licenses
            )
            license_type = TRIAL_LICENSE_TYPE[item.product]
            await LicenseLine.create(
                subscription_id=subscription.id,
                license_type=license_type,
                product=item.product,
                quantity=item.licenses,
            )
        await refresh_customer_columns([customer.id], day, moment_of(day) if today else now)
        listed = ", ".join(f"{p.product.value} x{p.licenses}" for p in products)
        created = " (new customer)" if new_customer is not None else ""
        return Audited(
            trial_row(trial),
            audit_target("Trial", trial.id),
            f"Started trial {trial.trial_id} for {customer.name}{created}: {listed}, "
            f"{duration_days} days",
        )

    return await run_mutation(viewer, START_TRIAL, "trial.start", work)


async def _create_customer(viewer: Viewer, new: NewCustomer, now: datetime) -> Customer:
    """A new customer of the viewer's partner, with its admin as a customer user; the
    viewer is assigned to it when its role sees only assigned customers."""
    customer = await Customer.create(
        partner_id=viewer.partner_id,
        name=" ".join(new.name.split()),
        org_id=uuid.uuid4(),
        region=new.region,
        created_at=now,
        created_by_id=viewer.admin.id,
        # Nothing announced yet: its first statuses are (app/domain/attention_states.py).
        attention_flags=0,
    )
    email = new.admin_email.strip().lower()
    await CustomerUser.create(
        customer_id=customer.id,
        uuid=uuid.uuid4(),
        email=email,
        display_name=email.split("@")[0],
        is_admin=True,
        created_at=now,
    )
    if viewer.role in ASSIGNABLE_ROLES:
        await CustomerAssignment.create(
            admin_id=viewer.admin.id, customer_id=customer.id, assigned_by_id=viewer.admin.id
        )
    return customer


# ------------------------------------------------- extending, cancelling ----


async def _own_active_trial(viewer: Viewer, trial_id: int | None) -> Trial:
    trial = (
        await Trial.filter(
            id=trial_id or 0, customer_id__in=Subquery(managed_customers(viewer).values("id"))
        )
        .select_for_update()
        .first()
    )
    if trial is None:
        raise reject(("input", "trial_id"), "No such trial.", UserErrorCode.NOT_FOUND)
    if trial.status != TrialStatus.ACTIVE:
        raise reject(
            ("input", "trial_id"),
            f"Trial {trial.trial_id} is {trial.status}, not ACTIVE.",
            UserErrorCode.CONFLICT,
        )
    return trial


async def extend_trial(
    viewer: Viewer, trial_id: int | None, days: int, *, now: datetime | None = None
) -> TrialRow:
    """Add 1 to 30 days to an ACTIVE trial, up to 180 days in all (`now`: the
    clock, for jobs and tests)."""

    async def work() -> Audited[TrialRow]:
        if not 1 <= days <= MAX_EXTENSION_DAYS:
            raise reject(
                ("input", "days"),
                f"A trial is extended by 1 to {MAX_EXTENSION_DAYS} days.",
                UserErrorCode.INVALID,
            )
        trial = await _own_active_trial(viewer, trial_id)
        end = trial.end_date + timedelta(days=days)
        if (end - trial.start_date).days > MAX_TOTAL_DAYS:
            raise reject(
                ("input", "days"),
                f"A trial lasts at most {MAX_TOTAL_DAYS} days in all "
                f"({(trial.end_date - trial.start_date).days} already).",
                UserErrorCode.LIMIT_EXCEEDED,
            )
        trial.end_date = end
        await trial.save(update_fields=["end_date"])
        await Subscription.filter(trial_id=trial.id).update(end_date=end)
        moment = now or utcnow()
        await refresh_customer_columns([trial.customer_id], moment.date(), moment)
        return Audited(
            trial_row(trial),
            audit_target("Trial", trial.id),
            f"Extended trial {trial.trial_id} by {days} days to {end.isoformat()}",
        )

    return await run_mutation(viewer, EXTEND_TRIAL, "trial.extend", work)


async def cancel_trial(
    viewer: Viewer, trial_id: int | None, *, now: datetime | None = None
) -> TrialRow:
    """End an ACTIVE trial now (`now`: the clock, for jobs and tests)."""

    async def work() -> Audited[TrialRow]:
        moment = now or utcnow()
        trial = await _own_active_trial(viewer, trial_id)
        await set_trial_status([trial.id], TrialStatus.CANCELLED, moment, moment.date())
        trial.status, trial.ended_at = TrialStatus.CANCELLED, moment
        return Audited(
            trial_row(trial), audit_target("Trial", trial.id), f"Cancelled trial {trial.trial_id}"
        )

    return await run_mutation(viewer, CANCEL_TRIAL, "trial.cancel", work)


# ---------------------------------------------------------------- list ----

MAX_ENDING_WITHIN_DAYS = 366


async def list_trials(
    viewer: Viewer,
    *,
    first: int | None,
    after: str | None,
    statuses: Sequence[TrialStatus] | None = None,
    customer_id: int | None = None,
    ending_within_days: int | None = None,
    today: date,
) -> Page[TrialRow]:
    """Trials of the customers the viewer sees, soonest end first."""
    query = Trial.filter(customer_id__in=Subquery(visible_customers(viewer).values("id")))
    if statuses is not None:
        query = query.filter(status__in=list(statuses))
    if customer_id is not None:
        query = query.filter(customer_id=customer_id)
    if ending_within_days is not None:
        if not 0 <= ending_within_days <= MAX_ENDING_WITHIN_DAYS:
            raise InvalidArgument(
                f"`endingWithinDays` must be between 0 and {MAX_ENDING_WITHIN_DAYS}"
            )
        query = query.filter(
            end_date__gte=today, end_date__lte=today + timedelta(days=ending_within_days)
        )
    page = await keyset_page(query, ("end_date", "id"), first, after, "trials")
    return replace(page, items=[trial_row(t) for t in page.items])
