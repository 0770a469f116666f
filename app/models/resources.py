"""Resources and help: quick links, featured resources and the searchable list."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from app.models.enums import ResourceSection


class Resource(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=200)
    url = fields.CharField(max_length=2000)
    section = fields.CharEnumField(ResourceSection, max_length=10)
    category = fields.CharField(max_length=100, null=True)
    description = fields.TextField(null=True)
    position = fields.IntField(default=0)

    class Meta:
        table = "resource"
        indexes = (("section", "position"),)
