"""Error policy: clients see validation errors and the domain's InvalidArgument
in full; any other exception is logged and reaches them as "Unexpected error."."""

from __future__ import annotations

import logging

from graphql import GraphQLError

from app.domain.errors import InvalidArgument

log = logging.getLogger("partnerhub.graphql")


def should_mask_error(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None or isinstance(original, (GraphQLError, InvalidArgument)):
        return False
    log.error("unexpected error in %s", error.path, exc_info=original)
    return True
