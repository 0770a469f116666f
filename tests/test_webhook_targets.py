"""Webhook targets: which URLs a webhook may go to (the address kinds, odd
spellings through the real resolver, local and metadata names, the allow-list),
the mutations refusing the others with nothing changed, and deliveries that
check again, connect to the checked address with the name kept for Host, SNI and
the certificate, follow no redirect, and read little and briefly. Every server
here is a real one on 127.0.0.1; nothing is sent anywhere else."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.domain.access import Viewer
from app.domain.report_schedules import create_schedule
from app.domain.webhook_targets import (
    MAX_ANSWER_BYTES,
    TargetRefused,
    WebhookTarget,
    address_problem,
    addresses_problem,
    check_target,
    send,
)
from app.domain.webhooks import MAX_ATTEMPTS, Attempt, deliver
from app.models.enums import AdminRole, ReportFrequency, ReportStatus
from app.models.reports import Report, ReportSchedule, ReportTemplate, WebhookDelivery
from app.queue import JobQueue
from tests import factories
from tests.graphql_client import data
from tests.report_helpers import flush_queue, run_jobs, template_ids
from tests.test_mutation_matrix import everything
from workers.reports import report_tick

NOTHING: frozenset[str] = frozenset()
PUBLIC_URL = "https://93.184.215.14/hook"  # accepted when saved; never sent to


# ------------------------------------------------------------------ addresses


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.0.0.2", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),
        ("::", "an unspecified address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.100.100.200", "a shared (carrier-grade NAT) address"),  # Alibaba metadata
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("10.1.2.3", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd00::1", "a private address"),
        ("fd00:ec2::254", "a private address"),  # AWS metadata over IPv6
        ("64:ff9b::a00:1", "a private address"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::1", "a private address"),  # 6to4 of 10.0.0.1
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("240.0.0.1", "a reserved or special-purpose address"),
        ("255.255.255.255", "a reserved or special-purpose address"),
        ("0.1.2.3", "a reserved or special-purpose address"),
        ("192.0.2.10", "a reserved or special-purpose address"),  # documentation
        ("2001:db8::1", "a reserved or special-purpose address"),  # documentation
        ("198.18.0.1", "a reserved or special-purpose address"),  # benchmarking
        ("::7f00:1", "a reserved or special-purpose address"),  # IPv4-compatible
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a reserved or special-purpose address"),
    ],
)
def test_addresses_inside_are_refused(address: str, kind: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "2606:2800:220:1::1",
        "::ffff:93.184.215.14",
        "64:ff9b::5db8:d70e",  # NAT64 of a public address
        "2002:5db8:d70e::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_are_accepted(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_every_address_a_name_resolves_to_is_checked() -> None:
    public = (ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("2606:2800:220:1::1"))
    assert addresses_problem(public) is None
    inside = ipaddress.ip_address("10.0.0.1")
    assert addresses_problem((*public, inside)) == "resolves to a private address (10.0.0.1)"
    mapped = ipaddress.ip_address("::ffff:a9fe:a9fe")
    assert addresses_problem((public[1], mapped)) == (
        "resolves to a link-local address (::ffff:169.254.169.254)"
    )


# ------------------------------------------------------------------ URLs


async def refusal(url: str, allowed: frozenset[str] = NOTHING) -> str:
    with pytest.raises(TargetRefused) as refused:
        await check_target(url, allowed)
    return str(refused.value)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://2130706433/", "resolves to a loopback address (127.0.0.1)"),
        ("https://0x7f000001/", "resolves to a loopback address (127.0.0.1)"),
        ("https://0x7f.1/", "resolves to a loopback address (127.0.0.1)"),
        ("https://127.1/x", "resolves to a loopback address (127.0.0.1)"),
        ("https://017700000001/", "resolves to a loopback address (127.0.0.1)"),
        ("https://0/", "resolves to an unspecified address (0.0.0.0)"),
        ("https://hooks.partner.invalid/", "cannot be resolved (hooks.partner.invalid)"),
    ],
)
async def test_odd_spellings_are_judged_by_what_the_resolver_makes_of_them(
    url: str, why: str
) -> None:
    assert await refusal(url) == why


def names_mapped_inside() -> list[str]:
    """The names /etc/hosts gives an address that is not public (localhost, ...)."""
    names = []
    for line in Path("/etc/hosts").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) > 1 and address_problem(ipaddress.ip_address(fields[0])) is not None:
            names += fields[1:]
    return names


async def test_names_this_machine_maps_inside_are_refused() -> None:
    names = names_mapped_inside()
    assert "localhost" in names
    for name in names:
        why = await refusal(f"https://{name}/hook")
        assert why.startswith(("resolves to a", "names an internal host")), (name, why)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LocalHost.",
        "foo.localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "anything.internal",
        "printer.local",
        "router.home.arpa",
        "kubernetes.default.svc",
    ],
)
async def test_local_and_metadata_names_are_refused(host: str) -> None:
    assert await refusal(f"https://{host}/hook") == f"names an internal host ({host.lower()})"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://93.184.215.14/hook", "is not an https:// URL"),
        ("https:///hook", "is not an https:// URL"),
        ("hooks.example.com/hook", "is not an https:// URL"),
        ("http://93.184.215.14/hook", "must use https://"),
        ("http://127.0.0.1:8080/hook", "must use https://"),
        ("https://user:pw@93.184.215.14/", "must not carry a user name or password"),
        ("https://93.184.215.14:0/", "has a port outside 1 to 65535"),
        ("https://93.184.215.14:70000/", "has a port outside 1 to 65535"),
        ("https://exa mple.com/", "has an invalid host name (exa%20mple.com)"),
        ("https://[fe80::1%25eth0]/", "points to a link-local address (fe80::1%25eth0)"),
        ("https://127.0.0.2/hook", "points to a loopback address (127.0.0.2)"),
    ],
)
async def test_the_url_itself(url: str, why: str) -> None:
    assert await refusal(url) == why


async def test_allowed_hosts_may_be_inside_and_use_http() -> None:
    allowed = Settings(webhook_allow_hosts=" 127.0.0.1, [::1], LOCALHOST ").webhook_allowed_hosts
    target = await check_target("http://127.0.0.1:9/hook", allowed)
    assert target.addresses == (ipaddress.ip_address("127.0.0.1"),)
    assert (await check_target("http://[0:0::1]:9/", allowed)).addresses == (
        ipaddress.ip_address("::1"),
    )
    assert (await check_target("https://localhost:9/", allowed)).addresses[0].is_loopback
    # The allow-list names hosts as the URL writes them, nothing else.
    assert (
        await refusal("https://127.0.0.2/", allowed) == "points to a loopback address (127.0.0.2)"
    )
    assert await refusal("https://2130706433/", allowed) == (
        "resolves to a loopback address (127.0.0.1)"
    )
    assert await refusal("http://127.0.0.1:9/hook") == "must use https://"
    assert (await check_target(PUBLIC_URL, NOTHING)).addresses == (
        ipaddress.ip_address("93.184.215.14"),
    )


# ------------------------------------------------------------------ the mutations

CREATE = """mutation($input: CreateReportScheduleInput!) { createReportSchedule(input: $input) {
  schedule { id webhookUrl } userErrors { field message code } } }"""
UPDATE = """mutation($input: UpdateReportScheduleInput!) { updateReportSchedule(input: $input) {
  schedule { id webhookUrl } userErrors { field message code } } }"""

REFUSED = [
    ("https://127.0.0.2/hook", "points to a loopback address (127.0.0.2)"),
    ("https://127.0.0.1:8443/hook", "points to a loopback address (127.0.0.1)"),
    ("https://[::1]/hook", "points to a loopback address (::1)"),
    ("https://[::ffff:127.0.0.1]/hook", "points to a loopback address (::ffff:127.0.0.1)"),
    ("https://0.0.0.0/hook", "points to an unspecified address (0.0.0.0)"),
    ("https://[::]/hook", "points to an unspecified address (::)"),
    ("https://100.64.0.1/hook", "points to a shared (carrier-grade NAT) address (100.64.0.1)"),
    ("https://169.254.169.254/latest/meta-data/", "points to a link-local address (169.254.169.254)"),
    ("https://192.168.1.1/hook", "points to a private address (192.168.1.1)"),
    ("https://172.16.5.4/hook", "points to a private address (172.16.5.4)"),
    ("https://10.1.2.3/hook", "points to a private address (10.1.2.3)"),
    ("https://[fd00::1]/hook", "points to a private address (fd00::1)"),
    ("https://[fe80::1]/hook", "points to a link-local address (fe80::1)"),
    ("https://224.0.0.1/hook", "points to a multicast address (224.0.0.1)"),
    ("https://240.0.0.1/hook", "points to a reserved or special-purpose address (240.0.0.1)"),
    ("https://198.51.100.7/hook", "points to a reserved or special-purpose address (198.51.100.7)"),
    ("https://[64:ff9b::a00:1]/hook", "points to a private address (64:ff9b::a00:1)"),
    ("https://metadata.google.internal/computeMetadata/v1/", "names an internal host (metadata.google.internal)"),
    ("https://metadata/hook", "names an internal host (metadata)"),
    ("https://localhost/hook", "names an internal host (localhost)"),
    ("https://foo.localhost/hook", "names an internal host (foo.localhost)"),
    ("https://2130706433/hook", "resolves to a loopback address (127.0.0.1)"),
    ("https://0x7f000001/hook", "resolves to a loopback address (127.0.0.1)"),
    ("https://127.1/hook", "resolves to a loopback address (127.0.0.1)"),
    ("https://017700000001/hook", "resolves to a loopback address (127.0.0.1)"),
    ("https://hooks.partner.invalid/hook", "cannot be resolved (hooks.partner.invalid)"),
    ("http://127.0.0.1:8080/hook", "must use https://"),
    ("http://93.184.215.14/hook", "must use https://"),
]  # fmt: skip


async def test_schedules_refuse_webhooks_inside_and_change_nothing(
    db: Settings, client: httpx.AsyncClient
) -> None:
    org = await factories.partner("Northwind Partners", "northwind.example")
    token = (await factories.team(org))[AdminRole.FULL_ADMIN].token
    devices = (await template_ids(client, token))["DEVICES"]
    created = (
        await data(
            client,
            token,
            CREATE,
            {"input": {"templateId": devices, "frequency": "DAILY", "hourUtc": 6,
                       "webhookUrl": PUBLIC_URL}},
        )
    )["createReportSchedule"]  # fmt: skip
    assert created["userErrors"] == [] and created["schedule"]["webhookUrl"] == PUBLIC_URL
    schedule_id = created["schedule"]["id"]
    before = await everything()
    for url, why in REFUSED:
        expected = [
            {
                "field": ["input", "webhookUrl"],
                "message": f"The webhook URL {why}.",
                "code": "INVALID",
            }
        ]
        create = {"templateId": devices, "frequency": "DAILY", "hourUtc": 6, "webhookUrl": url}
        answer = (await data(client, token, CREATE, {"input": create}))["createReportSchedule"]
        assert answer == {"schedule": None, "userErrors": expected}, url
        update = {"id": schedule_id, "hourUtc": 7, "webhookUrl": url}
        answer = (await data(client, token, UPDATE, {"input": update}))["updateReportSchedule"]
        assert answer == {"schedule": None, "userErrors": expected}, url
    assert await everything() == before


# ------------------------------------------------------------------ deliveries


class LocalServer:
    """A real HTTP(S) server on 127.0.0.1 that records each request (method, path,
    headers) and lets `answer` write the response."""

    def __init__(
        self,
        answer: Callable[[BaseHTTPRequestHandler], None],
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append((self.command, self.path, dict(self.headers)))
                try:
                    answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading, as it should

            do_POST = do_GET = _handle

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # refused TLS handshakes are part of the tests

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/reports"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def status(code: int, **headers: str) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


async def _delivery(url: str) -> WebhookDelivery:
    """A finished (FAILED, so no download link) report and a delivery to `url`."""
    org = await factories.partner("Northwind Partners", "northwind.example")
    template = await ReportTemplate.filter(partner_id=None).order_by("id").first()
    report = await Report.create(
        partner=org, template=template, status=ReportStatus.FAILED, error="No data"
    )
    return await WebhookDelivery.create(report=report, url=url)


async def _deliver(db: Settings, delivery: WebhookDelivery, allowed: frozenset[str]) -> Attempt:
    return await deliver(
        delivery.id,
        db.signing_key(),
        "http://127.0.0.1:8000",
        3600,
        1.0,
        datetime.now(UTC),
        allowed_hosts=allowed,
    )


async def test_the_receiver_needs_the_allow_list_to_save_and_to_deliver(
    db: Settings, client: httpx.AsyncClient, redis_url: str, http_settings: Settings
) -> None:
    await flush_queue(redis_url)
    org = await factories.partner("Northwind Partners", "northwind.example")
    admin = (await factories.team(org))[AdminRole.FULL_ADMIN]
    devices = (await template_ids(client, admin.token))["DEVICES"]
    settings = http_settings.model_copy(update={"webhook_retry_base_seconds": 0.05})
    assert settings.webhook_allowed_hosts == NOTHING
    with LocalServer(status(204)) as receiver:
        for url in (receiver.url, receiver.url.replace("http:", "https:")):
            create = {"templateId": devices, "frequency": "DAILY", "hourUtc": 6, "webhookUrl": url}
            answer = (await data(client, admin.token, CREATE, {"input": create}))[
                "createReportSchedule"
            ]
            assert answer["schedule"] is None
            assert [(e["field"], e["code"]) for e in answer["userErrors"]] == [
                (["input", "webhookUrl"], "INVALID")
            ]
        # A schedule saved while the setting allowed 127.0.0.1, which it no longer does.
        await admin.admin.fetch_related("partner")
        await create_schedule(
            Viewer(admin=admin.admin, partner=admin.admin.partner),
            (await ReportTemplate.get(partner_id=None, report_type="DEVICES")).id,
            ReportFrequency.DAILY,
            None,
            None,
            6,
            None,
            receiver.url,
            datetime(2030, 3, 4, 5, tzinfo=UTC),
            allowed_webhook_hosts=frozenset({"127.0.0.1"}),
        )
        queue = JobQueue(redis_url)
        try:
            ctx = {"settings": settings, "queue": queue}
            assert await report_tick(ctx, "2030-03-04T06:00:00+00:00") == 1
        finally:
            await queue.close()
        await run_jobs(redis_url, settings)
        assert receiver.requests == []
    delivery = await WebhookDelivery.get()
    assert delivery.attempts == MAX_ATTEMPTS and delivery.delivered_at is None
    assert delivery.last_status_code is None
    assert delivery.last_error == "Refused: the webhook URL must use https://."
    assert (await ReportSchedule.get()).webhook_url == receiver.url


async def test_a_name_that_now_resolves_inside_is_refused_at_delivery(db: Settings) -> None:
    with LocalServer(status(204)) as receiver:
        # Saved when it pointed elsewhere; 2130706433 is 127.0.0.1 to the resolver.
        delivery = await _delivery(f"https://2130706433:{receiver.port}/hooks/reports")
        attempt = await _deliver(db, delivery, frozenset({"127.0.0.1"}))
        assert receiver.requests == []
    assert attempt.delivered is False and attempt.retry_in == 1.0
    await delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.last_status_code is None
    assert delivery.last_error == (
        "Refused: the webhook URL resolves to a loopback address (127.0.0.1)."
    )


async def test_a_redirect_is_not_followed_and_fails_the_attempt(db: Settings) -> None:
    with LocalServer(status(204)) as elsewhere:
        with LocalServer(status(302, Location=elsewhere.url)) as receiver:
            delivery = await _delivery(receiver.url)
            attempt = await _deliver(db, delivery, frozenset({"127.0.0.1"}))
            assert [(m, p) for m, p, _ in receiver.requests] == [("POST", "/hooks/reports")]
        assert elsewhere.requests == []
    assert attempt.delivered is False and attempt.retry_in == 1.0
    await delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.delivered_at is None
    assert delivery.last_status_code == 302
    assert delivery.last_error == "HTTP 302 (redirects are not followed)"


def huge_answer(sent: list[int]) -> Callable[[BaseHTTPRequestHandler], None]:
    """200 with a 50 MB body, written 64 KiB at a time for about 8 s."""
    size, chunk = 50 * 1024 * 1024, b"x" * 65536

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        for _ in range(size // len(chunk)):
            handler.wfile.write(chunk)
            sent.append(len(chunk))
            time.sleep(0.01)

    return answer


async def test_a_huge_answer_is_not_read_whole(db: Settings) -> None:
    sent: list[int] = []
    with LocalServer(huge_answer(sent)) as receiver:
        delivery = await _delivery(receiver.url)
        started = time.monotonic()
        attempt = await _deliver(db, delivery, frozenset({"127.0.0.1"}))
        elapsed = time.monotonic() - started
    assert attempt.delivered is True
    assert elapsed < 3, elapsed
    assert sum(sent) < 10 * 1024 * 1024
    assert MAX_ANSWER_BYTES == 64 * 1024


async def test_the_attempt_gives_up_after_its_time_limit() -> None:
    def drip(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(100):  # one header byte at a time, never ending the head
            handler.wfile.write(b"X")
            handler.wfile.flush()
            time.sleep(0.1)

    with LocalServer(drip) as receiver:
        target = WebhookTarget(httpx.URL(receiver.url), (ipaddress.ip_address("127.0.0.1"),))
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await send(target, b"{}", {}, seconds=1.0)
        assert time.monotonic() - started < 2


async def test_the_checked_address_is_used_with_the_name_in_the_host_header() -> None:
    with LocalServer(status(204)) as receiver:
        # The first address refuses the connection (nothing listens on 127.0.0.2).
        addresses = (ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1"))
        url = httpx.URL(f"http://hooks.partner.test:{receiver.port}/hooks/reports")
        assert await send(WebhookTarget(url, addresses), b"{}", {"X-Test": "1"}) == 204
    [(method, path, headers)] = receiver.requests
    assert (method, path) == ("POST", "/hooks/reports")
    assert headers["Host"] == f"hooks.partner.test:{receiver.port}"
    assert headers["X-Test"] == "1"


# A test CA and a certificate for hooks.partner.test it signed (valid 2000-2100).
TEST_CA = """-----BEGIN CERTIFICATE-----
MIIBcDCCARagAwIBAgICEAAwCgYIKoZIzj0EAwIwHjEcMBoGA1UEAwwTUGFydG5l
ciBIdWIgdGVzdCBDQTAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFow
HjEcMBoGA1UEAwwTUGFydG5lciBIdWIgdGVzdCBDQTBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABCDXkJOMe2tdSdC01zeH4FV1oRrEkuEwhcHEQ7A5tv9dHj49I6Y9
mpGg/rh35drhJjCgiOdEM0ywbr1Lr7li2E2jQjBAMA8GA1UdEwEB/wQFMAMBAf8w
DgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBRXdo0zYiX8+h+znEzhpxd2ZSUYZDAK
BggqhkjOPQQDAgNIADBFAiAN+GzGf45ADivtCd1Eck7F/z/TEAdqTg9MTj/tXvUU
dQIhAJwQfRswwD0QudHNrRgR0npPHgkc86QkpysQb53+/yvX
-----END CERTIFICATE-----
"""
HOOKS_CERT = """-----BEGIN CERTIFICATE-----
MIIBvzCCAWagAwIBAgICEAEwCgYIKoZIzj0EAwIwHjEcMBoGA1UEAwwTUGFydG5l
ciBIdWIgdGVzdCBDQTAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFow
HTEbMBkGA1UEAwwSaG9va3MucGFydG5lci50ZXN0MFkwEwYHKoZIzj0CAQYIKoZI
zj0DAQcDQgAEKUR87+lJSNiKPEyMXU5WAhlaRQDpYeDkAvep+ApleKwDg9GX53Qj
GkvYHIHn1ZGndgJX9usuv1CUDPJE1ACcC6OBkjCBjzAdBgNVHREEFjAUghJob29r
cy5wYXJ0bmVyLnRlc3QwCQYDVR0TBAIwADAOBgNVHQ8BAf8EBAMCB4AwEwYDVR0l
BAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFAZClz2S17JH9bLhnCtHnOSsgn+8MB8G
A1UdIwQYMBaAFFd2jTNiJfz6H7OcTOGnF3ZlJRhkMAoGCCqGSM49BAMCA0cAMEQC
IE1rBLl099biIRs09wkX4ZqfVgwC+EtM9p4p+LThFr1pAiBGFNj654m3iEBXqIW4
tl/jTXFoRbp9nVoa6F26YlrlTA==
-----END CERTIFICATE-----
"""
HOOKS_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgBJDyICAERQfEmz3f
qEV07eXU4CZtXhpBLm974QpPtHahRANCAAQpRHzv6UlI2Io8TIxdTlYCGVpFAOlh
4OQC96n4CmV4rAOD0ZfndCMaS9gcgefVkad2Alf26y6/UJQM8kTUAJwL
-----END PRIVATE KEY-----
"""


async def test_https_to_the_checked_address_keeps_the_name_for_sni_and_the_certificate(
    tmp_path: Path,
) -> None:
    (tmp_path / "hooks.pem").write_text(HOOKS_CERT + HOOKS_KEY)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "hooks.pem")
    names: list[str | None] = []
    tls.sni_callback = lambda _socket, name, _context: names.append(name)
    trust = ssl.create_default_context(cadata=TEST_CA)
    loopback = (ipaddress.ip_address("127.0.0.1"),)
    with LocalServer(status(204), tls=tls) as receiver:
        url = httpx.URL(f"https://hooks.partner.test:{receiver.port}/hooks/reports")
        assert await send(WebhookTarget(url, loopback), b"{}", {}, verify=trust) == 204
        assert names == ["hooks.partner.test"]
        assert receiver.requests[0][2]["Host"] == f"hooks.partner.test:{receiver.port}"
        # The certificate is checked against the name, so another name fails.
        other = url.copy_with(host="other.partner.test")
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await send(WebhookTarget(other, loopback), b"{}", {}, verify=trust)
        assert len(receiver.requests) == 1
