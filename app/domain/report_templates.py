"""Report templates: the five DEFAULT ones (stored once, shared by every partner)
and each partner's CUSTOM ones (a name plus a subset and order of a default
template's columns), which can be renamed, given other columns or deleted.
A report stores the column keys it was requested with, and a deleted template
stays stored (marked deleted) for its past reports.

Readers and mutations hand the API `ReportTemplateValue`s: plain values with
the description, columns and date-range rules already worked out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from app.clock import utcnow
from app.domain.access import (
    CREATE_REPORT_TEMPLATE,
    DELETE_REPORT_TEMPLATE,
    UPDATE_REPORT_TEMPLATE,
    Viewer,
    visible_templates,
)
from app.domain.errors import MutationRejected, UserError, UserErrorCode, reject
from app.domain.ids import encode_global_id
from app.domain.mutations import Audited, audit_target, run_mutation
from app.domain.report_columns import DEFINITIONS, Column, ReportDefinition
from app.models.enums import ReportTemplateKind, ReportType
from app.models.reports import ReportSchedule, ReportTemplate

MAX_NAME_LENGTH = 80
# Characters a template name may hold: it becomes the start of the file name.
NAME_PUNCTUATION = set(" -_.,()&+'")


async def ensure_default_templates() -> None:
    """Store the DEFAULT templates that are missing and keep their columns current
    (run by `partnerhub migrate`)."""
    async with in_transaction():
        stored = {
            t.report_type: t for t in await ReportTemplate.filter(kind=ReportTemplateKind.DEFAULT)
        }
        for definition in DEFINITIONS.values():
            template = stored.get(definition.report_type)
            keys = list(definition.column_keys)
            if template is None:
                await ReportTemplate.create(
                    partner_id=None,
                    name=definition.name,
                    name_key=definition.name.lower(),
                    kind=ReportTemplateKind.DEFAULT,
                    report_type=definition.report_type,
                    column_keys=keys,
                )
            elif template.column_keys != keys or template.name != definition.name:
                template.column_keys, template.name = keys, definition.name
                template.name_key = definition.name.lower()
                await template.save(update_fields=["column_keys", "name", "name_key"])


@dataclass(frozen=True, slots=True)
class ReportTemplateValue:
    """A template as the API shows it, its figures worked out."""

    id: int
    name: str
    kind: ReportTemplateKind
    report_type: ReportType
    column_keys: tuple[str, ...]
    description: str
    columns: tuple[Column, ...]
    supports_date_range: bool
    requires_date_range: bool
    deleted_at: datetime | None

    @classmethod
    def of(cls, template: ReportTemplate) -> ReportTemplateValue:
        definition = definition_of(template)
        return cls(
            id=template.id,
            name=template.name,
            kind=ReportTemplateKind(template.kind),
            report_type=ReportType(template.report_type),
            column_keys=tuple(template.column_keys),
            description=description_of(template),
            columns=tuple(columns_of(template)),
            supports_date_range=definition.supports_date_range,
            requires_date_range=definition.requires_date_range,
            deleted_at=template.deleted_at,
        )


# A stored template or its value: what the helpers below read of either.
AnyTemplate = ReportTemplate | ReportTemplateValue


def definition_of(template: AnyTemplate) -> ReportDefinition:
    return DEFINITIONS[ReportType(template.report_type)]


def columns_of(template: AnyTemplate, keys: Sequence[str] | None = None) -> list[Column]:
    """The template's columns in output order; with `keys` (those a report stored
    when it was requested), those columns of the template's report type instead."""
    definition = definition_of(template)
    chosen = template.column_keys if keys is None else keys
    return [definition.column(k) for k in chosen if k in definition.column_keys]


def description_of(template: AnyTemplate) -> str:
    definition = definition_of(template)
    if template.kind == ReportTemplateKind.DEFAULT:
        return definition.description
    return f"Custom template on {definition.name}: {definition.description}"


def live_templates(viewer: Viewer) -> QuerySet[ReportTemplate]:
    """The templates the viewer may list and use: deleted CUSTOM ones stay stored
    only for their past reports (which still read them by id)."""
    return visible_templates(viewer).filter(deleted_at=None)


async def list_templates(viewer: Viewer) -> list[ReportTemplateValue]:
    """DEFAULT templates first (in the order of SPEC.md), then the partner's CUSTOM ones by name."""
    templates = await live_templates(viewer)
    order = list(DEFINITIONS)
    ordered = sorted(
        templates,
        key=lambda t: (
            t.kind != ReportTemplateKind.DEFAULT,
            order.index(ReportType(t.report_type)) if t.kind == ReportTemplateKind.DEFAULT else 0,
            t.name_key,
            t.id,
        ),
    )
    return [ReportTemplateValue.of(t) for t in ordered]


async def get_template(viewer: Viewer, template_id: int | None) -> ReportTemplateValue | None:
    """A template the viewer may use (not a deleted one)."""
    if template_id is None:
        return None
    template = await live_templates(viewer).get_or_none(id=template_id)
    return ReportTemplateValue.of(template) if template else None


async def templates_by_ids(viewer: Viewer, ids: Sequence[int]) -> dict[int, ReportTemplateValue]:
    """Templates the viewer sees, deleted ones too (a past report still shows
    its template), in one statement."""
    found = await visible_templates(viewer).filter(id__in=list(ids))
    return {t.id: ReportTemplateValue.of(t) for t in found}


async def find_template(viewer: Viewer, name: str) -> ReportTemplateValue | None:
    """A template the viewer sees, by name in any case (the CLI's --template)."""
    key = " ".join(name.split()).lower()
    template = await live_templates(viewer).filter(name_key=key).first()
    return ReportTemplateValue.of(template) if template else None


def _clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not 1 <= len(cleaned) <= MAX_NAME_LENGTH:
        raise reject(
            ("input", "name"),
            f"A template name is 1 to {MAX_NAME_LENGTH} characters.",
            UserErrorCode.INVALID,
        )
    if any(not (ch.isalnum() or ch in NAME_PUNCTUATION) for ch in cleaned):
        raise reject(
            ("input", "name"),
            "A template name holds letters, digits, spaces and - _ . , ( ) & + ' only "
            "(it starts the report's file name).",
            UserErrorCode.INVALID,
        )
    return cleaned


def _check_columns(definition: ReportDefinition, keys: Sequence[str]) -> list[str]:
    if not keys:
        raise reject(("input", "column_keys"), "Choose at least one column.", UserErrorCode.INVALID)
    errors: list[UserError] = []
    seen: set[str] = set()
    for i, key in enumerate(keys):
        field = ("input", "column_keys", str(i))
        if key not in definition.column_keys:
            errors.append(
                UserError(
                    field,
                    f"{key!r} is not a column of {definition.name}; its columns are "
                    f"{', '.join(definition.column_keys)}.",
                    UserErrorCode.INVALID,
                )
            )
        elif key in seen:
            errors.append(UserError(field, f"{key!r} is listed twice.", UserErrorCode.INVALID))
        seen.add(key)
    if errors:
        raise MutationRejected(errors)
    return list(keys)


async def _ensure_name_free(viewer: Viewer, name: str, except_id: int | None = None) -> None:
    clash = live_templates(viewer).filter(name_key=name.lower())
    if except_id is not None:
        clash = clash.exclude(id=except_id)
    if await clash.exists():
        raise reject(
            ("input", "name"),
            f"A report template named {name!r} already exists.",
            UserErrorCode.CONFLICT,
        )


async def _own_custom_template(viewer: Viewer, template_id: int | None) -> ReportTemplate:
    """A CUSTOM template of the viewer's partner, locked for the change; a DEFAULT
    one is FORBIDDEN, anything else (another partner's, deleted, unknown) NOT_FOUND."""
    template = (
        await live_templates(viewer).select_for_update().get_or_none(id=template_id)
        if template_id
        else None
    )
    if template is None:
        raise reject(("input", "template_id"), "No such report template.", UserErrorCode.NOT_FOUND)
    if template.kind == ReportTemplateKind.DEFAULT:
        raise reject(
            ("input", "template_id"),
            f"{template.name!r} is a DEFAULT template: it cannot be changed or deleted "
            "(create a CUSTOM template from it instead).",
            UserErrorCode.FORBIDDEN,
        )
    return template


async def create_template(
    viewer: Viewer, name: str, report_type: ReportType, column_keys: Sequence[str]
) -> ReportTemplateValue:
    async def work() -> Audited[ReportTemplateValue]:
        clean = _clean_name(name)
        definition = DEFINITIONS[report_type]
        keys = _check_columns(definition, column_keys)
        await _ensure_name_free(viewer, clean)
        template = await ReportTemplate.create(
            partner_id=viewer.partner_id,
            name=clean,
            name_key=clean.lower(),
            kind=ReportTemplateKind.CUSTOM,
            report_type=report_type,
            column_keys=keys,
            created_by_id=viewer.admin.id,
        )
        return Audited(
            ReportTemplateValue.of(template),
            audit_target("ReportTemplate", template.id),
            f"Created report template {clean!r} on {definition.name} ({len(keys)} columns)",
        )

    return await run_mutation(viewer, CREATE_REPORT_TEMPLATE, "report_template.create", work)


async def update_template(
    viewer: Viewer,
    template_id: int | None,
    name: str | None,
    column_keys: Sequence[str] | None,
) -> ReportTemplateValue:
    """Rename a CUSTOM template and/or choose its columns again (from the same
    DEFAULT template). Reports already requested keep the columns they had."""

    async def work() -> Audited[ReportTemplateValue]:
        clean = _clean_name(name) if name is not None else None
        template = await _own_custom_template(viewer, template_id)
        definition = definition_of(template)
        keys = _check_columns(definition, column_keys) if column_keys is not None else None
        changes = []
        if clean is not None and clean != template.name:
            await _ensure_name_free(viewer, clean, except_id=template.id)
            changes.append(f"renamed {template.name!r} to {clean!r}")
            template.name, template.name_key = clean, clean.lower()
        if keys is not None and keys != template.column_keys:
            changes.append(f"columns now {', '.join(keys)}")
            template.column_keys = keys
        await template.save(update_fields=["name", "name_key", "column_keys"])
        return Audited(
            ReportTemplateValue.of(template),
            audit_target("ReportTemplate", template.id),
            f"Report template {template.name!r}: " + ("; ".join(changes) or "no change"),
        )

    return await run_mutation(viewer, UPDATE_REPORT_TEMPLATE, "report_template.update", work)


async def delete_template(viewer: Viewer, template_id: int | None) -> int:
    """Delete a CUSTOM template that no schedule uses; returns its id. Its past
    reports stay, with their template and columns (the row is kept, marked
    deleted, under a name key no live template can hold, so the name is free)."""

    async def work() -> Audited[int]:
        template = await _own_custom_template(viewer, template_id)
        schedules = await ReportSchedule.filter(
            partner_id=viewer.partner_id, template_id=template.id
        ).order_by("id")
        if schedules:
            raise reject(
                ("input", "template_id"),
                f"{template.name!r} is used by {len(schedules)} report schedule(s): "
                + ", ".join(_schedule_label(s) for s in schedules)
                + ". Delete those schedules first.",
                UserErrorCode.CONFLICT,
            )
        template.deleted_at = utcnow()
        template.name_key = f"#deleted {template.id}"  # '#' is in no template name
        await template.save(update_fields=["deleted_at", "name_key"])
        return Audited(
            template.id,
            audit_target("ReportTemplate", template.id),
            f"Deleted report template {template.name!r}",
        )

    return await run_mutation(viewer, DELETE_REPORT_TEMPLATE, "report_template.delete", work)


def _schedule_label(schedule: ReportSchedule) -> str:
    """How a schedule is named to its admins (schedules have no name of their own):
    when it runs, and its id."""
    # Imported here: report_schedules imports this module.
    from app.domain.report_schedules import _describe

    return f"{_describe(schedule)} ({encode_global_id('ReportSchedule', schedule.id)})"
