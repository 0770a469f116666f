"""An SPA in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) opens a page served from another origin
that signs in with an OIDC token, reads customers with fetch, generates a
report, follows it with reportUpdated over graphql-transport-ws and downloads
the CSV through its signed URL. A page of an origin that is not allowed is
blocked by CORS. The test asserts what the pages saw."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.test_oidc import AUDIENCE, Issuer, issuer  # noqa: F401 (a fixture)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Partner Hub SPA test</title></head>
<body><pre id="result"></pre>
<script>
const params = new URLSearchParams(location.hash.slice(1));
const api = params.get("api"), token = params.get("token"), mode = params.get("mode");
const show = (value) => { document.getElementById("result").textContent = JSON.stringify(value); };

async function gql(query, variables) {
  const response = await fetch(api + "/graphql", {
    method: "POST",
    headers: {"Content-Type": "application/json", "Authorization": "Bearer " + token},
    body: JSON.stringify({query, variables}),
  });
  return {status: response.status, body: await response.json(),
          requestId: response.headers.get("X-Request-ID")};
}

function follow(id) {
  return new Promise((resolve, reject) => {
    const seen = [];
    let last = null;
    const socket = new WebSocket(api.replace(/^http/, "ws") + "/graphql", "graphql-transport-ws");
    socket.onopen = () => socket.send(JSON.stringify(
      {type: "connection_init", payload: {Authorization: "Bearer " + token}}));
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        socket.send(JSON.stringify({id: "1", type: "subscribe", payload: {
          query: "subscription($id: ID!) { reportUpdated(id: $id) { status rowCount " +
                 "download { url fileName } } }",
          variables: {id}}}));
      } else if (message.type === "next") {
        last = message.payload.data.reportUpdated;
        seen.push(last.status);
      } else if (message.type === "complete") {
        socket.close(1000);
        resolve({seen, last});
      } else if (message.type === "error") {
        reject(new Error(JSON.stringify(message.payload)));
      }
    };
    socket.onclose = (event) => { if (!last || !["SUCCEEDED", "FAILED"].includes(last.status))
      reject(new Error("closed " + event.code)); };
  });
}

async function spa() {
  const page = await gql(
    "{ viewer { email } customers(first: 10) { totalCount nodes { name } } " +
    "reportTemplates { id reportType kind columns { title } } }");
  const devices = page.body.data.reportTemplates.find(
    (t) => t.reportType === "DEVICES" && t.kind === "DEFAULT");
  const generated = await gql(
    "mutation($t: ID!) { generateReport(input: {templateId: $t}) " +
    "{ report { id status } userErrors { message } } }", {t: devices.id});
  const report = generated.body.data.generateReport.report;
  const followed = await follow(report.id);
  const file = await fetch(followed.last.download.url);
  const csv = await file.text();
  return {
    viewer: page.body.data.viewer, customers: page.body.data.customers,
    requestId: page.requestId, titles: devices.columns.map((c) => c.title),
    generated: generated.body.data.generateReport, seen: followed.seen, report: followed.last,
    fileStatus: file.status, csv,
    disposition: file.headers.get("Content-Disposition"),
    checksum: file.headers.get("X-Checksum-SHA256"),
  };
}

async function blocked() {
  try {
    await gql("{ viewer { email } }");
    return {blocked: false};
  } catch (error) {
    return {blocked: true, error: error.name};
  }
}

(mode === "blocked" ? blocked() : spa()).then(show, (error) => show({error: String(error)}));
</script></body></html>
"""


@contextmanager
def page_server() -> Iterator[int]:
    """A static server for the SPA page (another origin than the API)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def chromium() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver_path, "install Debian's chromium and chromium-driver (.ci/run does)"
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--no-first-run"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def what_the_page_saw(driver: Any, url: str, timeout: float = 90) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.ID, "result").text)
    return json.loads(driver.find_element(By.ID, "result").text)


def test_an_spa_on_another_origin_signs_in_reads_generates_follows_and_downloads(
    tmp_path: Path, redis_url: str, issuer: Issuer
) -> None:
    from app.demo import demo_admins
    from tests.cli_process import cli_env, free_port, run_cli
    from tests.report_helpers import flush_queue
    from tests.test_serve import running, wait_healthy

    admin = next(a for a in demo_admins(1) if a.partner == "Northwind Partners")
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    with page_server() as page_port, page_server() as other_port:
        page_origin = f"http://localhost:{page_port}"
        env = cli_env(f"sqlite://{tmp_path / 'spa.sqlite3'}", tmp_path / "var", redis_url)
        env |= {
            "PARTNERHUB_CORS_ORIGINS": page_origin,
            "PARTNERHUB_OIDC_ISSUER": issuer.url,
            "PARTNERHUB_OIDC_AUDIENCE": AUDIENCE,
            "PARTNERHUB_SECRET_KEY": "a-shared-secret-of-more-than-32-characters",
        }
        assert run_cli(["migrate"], env).returncode == 0
        assert run_cli(["demo", "--customers", "24"], env).returncode == 0
        asyncio.run(flush_queue(redis_url))
        token = issuer.token(email=admin.email.upper())
        logs = tmp_path / "serve.log", tmp_path / "worker.log"
        with (
            running(["serve", "--port", str(api_port)], env, logs[0]) as server,
            running(["worker"], env, logs[1]),
            chromium() as driver,
        ):
            wait_healthy(api, server, logs[0])
            saw = what_the_page_saw(driver, f"{page_origin}/#api={api}&token={token}")
            assert "error" not in saw, (saw, logs[0].read_text()[-3000:])
            blocked = what_the_page_saw(
                driver, f"http://localhost:{other_port}/#api={api}&token={token}&mode=blocked"
            )
            expected_total = httpx.post(
                f"{api}/graphql",
                json={"query": "{ customers { totalCount } }"},
                headers={"Authorization": f"Bearer {admin.token}"},
            ).json()["data"]["customers"]["totalCount"]

    assert saw["viewer"] == {"email": admin.email}
    assert saw["customers"]["totalCount"] == expected_total > 0
    assert len(saw["customers"]["nodes"]) == min(10, expected_total)
    assert saw["requestId"]  # an exposed header, read by the page
    assert saw["generated"]["userErrors"] == [] and saw["generated"]["report"]["status"] == "QUEUED"
    assert saw["seen"][-1] == "SUCCEEDED" and saw["seen"][0] in ("QUEUED", "RUNNING", "SUCCEEDED")
    assert saw["report"]["download"]["url"].startswith(f"{api}/reports/")
    assert saw["fileStatus"] == 200
    lines = saw["csv"].split("\r\n")
    assert lines[-1] == ""
    assert lines[0].split(",") == saw["titles"]
    assert len(lines) - 2 == saw["report"]["rowCount"] > 0
    assert saw["checksum"] == hashlib.sha256(saw["csv"].encode()).hexdigest()
    assert saw["report"]["download"]["fileName"] in saw["disposition"]
    assert blocked == {"blocked": True, "error": "TypeError"}


def test_graphiql_says_in_words_when_its_scripts_cannot_load(tmp_path: Path) -> None:
    """GraphiQL loads its scripts from a CDN; without them (this machine reaches no
    CDN) the page must not stay at "Loading..." forever."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.cli_process import cli_env, free_port, run_cli
    from tests.test_serve import running, wait_healthy

    env = cli_env(None, tmp_path / "var")
    assert run_cli(["migrate"], env).returncode == 0
    port = free_port()
    log = tmp_path / "serve.log"
    with running(["serve", "--port", str(port)], env, log) as server, chromium() as driver:
        wait_healthy(f"http://127.0.0.1:{port}", server, log)
        driver.get(f"http://127.0.0.1:{port}/graphql")

        def settled(d: Any) -> str | None:
            box = d.find_element(By.ID, "graphiql")
            if d.execute_script("return Boolean(window.GraphiQL)"):
                return "rendered"
            return "explained" if "could not load its scripts" in box.text else None

        outcome = WebDriverWait(driver, 30).until(settled)
        if outcome == "explained":
            text = driver.find_element(By.ID, "graphiql").text
            assert "POST /graphql" in text and "Loading..." not in text
    env["PARTNERHUB_GRAPHIQL"] = "false"
    with running(["serve", "--port", str(port)], env, log) as server:
        wait_healthy(f"http://127.0.0.1:{port}", server, log)
        page = httpx.get(f"http://127.0.0.1:{port}/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 404 and page.json()["errors"][0]["extensions"]["code"]
