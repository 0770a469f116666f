"""Tortoise models, one module per domain. `MODEL_MODULES` is what Tortoise loads."""

from __future__ import annotations

MODEL_MODULES: list[str] = [
    "app.models.organization",
    "app.models.admins",
    "app.models.customers",
    "app.models.tags",
    "app.models.subscriptions",
    "app.models.trials",
    "app.models.calling",
    "app.models.inventory",
    "app.models.reports",
    "app.models.audit",
    "app.models.resources",
    "app.models.system",
    "app.models.attention",
]
