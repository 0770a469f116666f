"""Error policy: clients see validation errors and our own public errors in
full; any other exception is logged and reaches them as "Unexpected error."."""

from __future__ import annotations

import logging

from graphql import GraphQLError

log = logging.getLogger("partnerhub.graphql")


class PublicError(Exception):
    """An error whose message is meant for the client (e.g. `first` over 100)."""


def should_mask_error(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None or isinstance(original, (GraphQLError, PublicError)):
        return False
    log.error("unexpected error in %s", error.path, exc_info=original)
    return True
