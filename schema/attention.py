"""The attention feed in GraphQL: the `AttentionEvent` type, the
`attentionEvents` connection (newest first, in the viewer's scope) and the
`attentionEvents` subscription (new events as they are written), over
app/domain/attention_feed.py."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, datetime
from typing import Annotated

import strawberry

from app.domain import attention_feed
from app.domain.attention_feed import AttentionEventValue, EventFilter
from app.domain.ids import decode_id_of, encode_global_id
from schema.context import Context, Info
from schema.customers import Customer
from schema.enums import AttentionEventType, CustomerStatus, ProductFamily
from schema.loaders import reached_customer
from schema.node import Node, node_loader
from schema.pagination import Connection


@strawberry.type(
    name="AttentionEvent",
    description="A customer started (or stopped) needing attention. The fields after "
    "`occurredAt` are set for the types named in their descriptions, null otherwise.",
)
class AttentionEvent(Node):
    value: strawberry.Private[AttentionEventValue]
    type: AttentionEventType
    status: CustomerStatus | None = strawberry.field(
        description="STATUS_GAINED, STATUS_LOST: the status gained or lost."
    )
    occurred_at: datetime
    trial_end_date: date | None = strawberry.field(
        description="TRIAL_ENDING: the day the trial ends."
    )
    days_left: int | None = strawberry.field(
        description="TRIAL_ENDING: whole days from the event to the trial's end."
    )
    family: ProductFamily | None = strawberry.field(
        description="LOW_LICENSE_ASSIGNMENT: the product family whose licenses are little assigned."
    )
    week: date | None = strawberry.field(
        description="CALL_QUALITY_DECLINING: the Monday of the week whose calls declined."
    )
    poor_call_share_percent: float | None = strawberry.field(
        description="CALL_QUALITY_DECLINING: the share of poor-quality calls that week (%)."
    )
    previous_poor_call_share_percent: float | None = strawberry.field(
        description="CALL_QUALITY_DECLINING: the share of poor-quality calls the week before (%)."
    )

    @classmethod
    def of(cls, event: AttentionEventValue) -> AttentionEvent:
        return cls(
            id=strawberry.ID(encode_global_id("AttentionEvent", event.id)),
            value=event,
            type=event.type,
            status=event.status,
            occurred_at=event.occurred_at,
            trial_end_date=event.trial_end_date,
            days_left=event.days_left,
            family=event.family,
            week=event.week,
            poor_call_share_percent=event.poor_share,
            previous_poor_call_share_percent=event.previous_poor_share,
        )

    @strawberry.field(description="The customer (null once it is gone from the viewer's scope).")
    async def customer(self, info: Info) -> Customer | None:
        row = await reached_customer(info, self.value.customer_id)
        return Customer.of(row) if row is not None else None


@node_loader("AttentionEvent")
async def load_attention_event(info: Info, pk: int) -> AttentionEvent | None:
    event = await attention_feed.get_event(info.context.viewer, pk)
    return AttentionEvent.of(event) if event else None


AttentionEventConnection = Connection[AttentionEvent]


async def resolve_attention_events(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    types: Annotated[
        list[AttentionEventType] | None,
        strawberry.argument(description="Events of any of these types (all when left out)."),
    ] = None,
    customer_ids: Annotated[
        list[strawberry.ID] | None,
        strawberry.argument(
            description="Events of any of these customers (at most 100); a customer "
            "out of the viewer's scope matches nothing."
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        strawberry.argument(
            description="Events that occurred at or after this UTC time (not in the future)."
        ),
    ] = None,
) -> AttentionEventConnection:
    flt = EventFilter(
        types=types,
        customer_ids=[decode_id_of(str(c), "Customer") for c in customer_ids]
        if customer_ids is not None
        else None,
        since=since,
    )
    page = await attention_feed.list_events(
        info.context.viewer, first=first, after=after, flt=flt, now=info.context.clock.now
    )
    return AttentionEventConnection.of(page, AttentionEvent.of)


async def attention_event_stream(
    info: Info,
    types: Annotated[
        list[AttentionEventType] | None,
        strawberry.argument(description="Events of any of these types (all when left out)."),
    ] = None,
) -> AsyncGenerator[AttentionEvent, None]:
    """Each new event the viewer sees, of `types`, as it is written; until the
    socket closes (or its token stops working: schema/websocket_auth.py)."""
    context = info.context
    poll = context.settings.attention_stream_poll_seconds
    async for event in attention_feed.follow_events(context.viewer, types, poll):
        # A socket's context lives as long as it: each event is read with a
        # clock of its own time and DataLoaders holding nothing older.
        _renew(context)
        yield AttentionEvent.of(event)


def _renew(context: Context) -> None:
    """A new clock and new DataLoaders for the context (what a new request would
    get): a socket's subscription otherwise reads statuses as of its connection."""
    context.__post_init__()
    context.__dict__.pop("loaders", None)  # the cached_property, made again on use


@strawberry.type
class AttentionSubscription:
    attention_events: AttentionEvent = strawberry.subscription(
        resolver=attention_event_stream,
        description="Emits each new attention event of the viewer's scope (of `types`; "
        "every type when left out) as it is written.",
    )
