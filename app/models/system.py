"""Facts about the installation itself."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class DemoDataset(Model):
    """Records that `partnerhub demo` loaded this database, with which seed."""

    id = fields.IntField(primary_key=True)
    seed = fields.IntField()
    customers_per_partner = fields.IntField()
    loaded_at = fields.DatetimeField()

    class Meta:
        table = "demo_dataset"
