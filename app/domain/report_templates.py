"""Report templates: the five DEFAULT ones (stored once, shared by every partner)
and each partner's CUSTOM ones (a name plus a subset and order of a default
template's columns)."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.transactions import in_transaction

from app.domain import audit
from app.domain.access import (
    REPORT_TEMPLATE_ROLES,
    Viewer,
    require_role,
    require_setup_completed,
    visible_templates,
)
from app.domain.errors import MutationRejected, UserError, UserErrorCode, reject
from app.domain.ids import encode_global_id
from app.domain.report_columns import DEFINITIONS, Column, ReportDefinition
from app.models.enums import ReportTemplateKind, ReportType
from app.models.reports import ReportTemplate

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


def definition_of(template: ReportTemplate) -> ReportDefinition:
    return DEFINITIONS[ReportType(template.report_type)]


def columns_of(template: ReportTemplate) -> list[Column]:
    """The template's columns in output order."""
    definition = definition_of(template)
    return [definition.column(k) for k in template.column_keys if k in definition.column_keys]


def description_of(template: ReportTemplate) -> str:
    definition = definition_of(template)
    if template.kind == ReportTemplateKind.DEFAULT:
        return definition.description
    return f"Custom template on {definition.name}: {definition.description}"


async def list_templates(viewer: Viewer) -> list[ReportTemplate]:
    """DEFAULT templates first (in the order of SPEC.md), then the partner's CUSTOM ones by name."""
    templates = await visible_templates(viewer)
    order = list(DEFINITIONS)
    return sorted(
        templates,
        key=lambda t: (
            t.kind != ReportTemplateKind.DEFAULT,
            order.index(ReportType(t.report_type)) if t.kind == ReportTemplateKind.DEFAULT else 0,
            t.name_key,
            t.id,
        ),
    )


async def get_template(viewer: Viewer, template_id: int | None) -> ReportTemplate | None:
    if template_id is None:
        return None
    return await visible_templates(viewer).get_or_none(id=template_id)


async def find_template(viewer: Viewer, name: str) -> ReportTemplate | None:
    """A template the viewer sees, by name in any case (the CLI's --template)."""
    key = " ".join(name.split()).lower()
    return await visible_templates(viewer).filter(name_key=key).first()


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
        raise reject(("input", "columnKeys"), "Choose at least one column.", UserErrorCode.INVALID)
    errors: list[UserError] = []
    seen: set[str] = set()
    for i, key in enumerate(keys):
        field = ("input", "columnKeys", str(i))
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


async def create_template(
    viewer: Viewer, name: str, report_type: ReportType, column_keys: Sequence[str]
) -> ReportTemplate:
    require_setup_completed(viewer)
    require_role(viewer, REPORT_TEMPLATE_ROLES, "Creating report templates")
    clean = _clean_name(name)
    definition = DEFINITIONS[report_type]
    keys = _check_columns(definition, column_keys)
    async with in_transaction():
        if await visible_templates(viewer).filter(name_key=clean.lower()).exists():
            raise reject(
                ("input", "name"),
                f"A report template named {clean!r} already exists.",
                UserErrorCode.CONFLICT,
            )
        template = await ReportTemplate.create(
            partner_id=viewer.partner_id,
            name=clean,
            name_key=clean.lower(),
            kind=ReportTemplateKind.CUSTOM,
            report_type=report_type,
            column_keys=keys,
            created_by_id=viewer.admin.id,
        )
        await audit.record(
            viewer,
            "report_template.create",
            encode_global_id("ReportTemplate", template.id),
            f"Created report template {clean!r} on {definition.name} ({len(keys)} columns)",
        )
    return template
