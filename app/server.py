"""How `partnerhub serve` closes websockets when it shuts down.

On SIGTERM uvicorn closes every open websocket with 1012 (service restart).
A browser SPA should instead hear 1001 (going away): this replica is leaving,
so reconnect, through the load balancer, to another one. uvicorn picks its
websocket protocol class from its `ws` option, and the same class is used in
every process of `serve --workers N` (the option travels with uvicorn's
config to each child), so the close code is set there rather than in a
server or supervisor of our own.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

GOING_AWAY = 1001
SHUTDOWN_REASON = "server shutting down"


class GoingAwayWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol (the one it picks itself when the
    `websockets` package is installed), closing open sockets with 1001 and a
    reason at shutdown; the app hears the same code, so GraphQL subscriptions
    end as for a client that left."""

    def shutdown(self) -> None:
        if not self.handshake_complete or self.close_sent:
            # Not a websocket yet (uvicorn answers 500), or already closing.
            super().shutdown()
            return
        self.stop_keepalive()
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": GOING_AWAY, "reason": SHUTDOWN_REASON}
        )
        self.conn.send_close(GOING_AWAY, SHUTDOWN_REASON)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()
