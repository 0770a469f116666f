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


class CronRun(Model):
    """One occurrence of a periodic job (the Sunday calling rollup, trial expiry,
    report retention) that a worker claimed; unique per job and occurrence, so
    an occurrence runs once whatever the number of workers, and one that fell in
    an outage is found missing and run by the next tick."""

    id = fields.IntField(primary_key=True)
    job = fields.CharField(max_length=40)
    occurrence = fields.DatetimeField(description="the scheduled time it covers (UTC)")
    claimed_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    attempts = fields.SmallIntField(default=1)
    error = fields.TextField(null=True)

    class Meta:
        table = "cron_run"
        unique_together = (("job", "occurrence"),)
