"""The report in a real browser: headless Chromium loads a smoke-profile report from file:// and the
test asserts on the rendered page (every claim and badge present, no console errors, every image
decoded, nothing fetched from the network), then saves a screenshot to .cache/screenshot-smoke.png
(git-ignored: `make test` leaves the work tree as it found it; reports/screenshot-smoke.png is the
committed copy, refreshed by hand).

Chromium is driven over the Chrome DevTools Protocol; the few lines of websocket client below are
all it needs (the stdlib has none, and no extra dependency is worth it for one test).
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CLAIM = "hinton-kd-helps"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--remote-debugging-port=0",
         "--hide-scrollbars", "about:blank"]


class DevTools:
    """A minimal websocket client (RFC 6455: text frames, client-masked) speaking CDP to one browser."""

    def __init__(self, port: int, path: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while not head.endswith(b"\r\n\r\n"):  # byte by byte, so no frame is read past the handshake
            head += self.sock.recv(1) or self._closed()
        assert head.startswith(b"HTTP/1.1 101"), head
        self.last_id, self.events = 0, []

    def _closed(self):
        raise ConnectionError("DevTools connection closed")

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            buf += self.sock.recv(min(n - len(buf), 1 << 20)) or self._closed()
        return bytes(buf)

    def _send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        size = bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + n.to_bytes(2, "big") if n < 1 << 16
                                                   else bytes([0x80 | 127]) + n.to_bytes(8, "big"))
        self.sock.sendall(bytes([0x81]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _receive(self) -> dict:
        message = b""
        while True:
            first, second = self._exact(2)
            n = second & 0x7F
            n = int.from_bytes(self._exact({126: 2, 127: 8}[n]), "big") if n >= 126 else n
            payload = self._exact(n)  # frames from the server are never masked
            if first & 0x0F == 0x8:
                self._closed()
            message += payload
            if first & 0x80:
                return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.last_id += 1
        self._send(json.dumps({"id": self.last_id, "method": method, "params": params,
                               **({"sessionId": session} if session else {})}))
        while True:
            msg = self._receive()
            if msg.get("id") == self.last_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, msg in enumerate(self.events):
                if msg.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._receive())
        raise TimeoutError(f"no {method} within {timeout} s")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("headless Chromium not found: install it with `apt-get install -y chromium` "
                    "(Debian; .ci/run does this) to run the real-browser test of the report")
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen([CHROMIUM, f"--user-data-dir={profile}", *FLAGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not (port_file.exists() and len(port_file.read_text().splitlines()) == 2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"chromium did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.1)
    port, path = port_file.read_text().splitlines()
    try:
        yield DevTools(int(port), path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_page(cdp: DevTools, url: str, width: int = 1280) -> tuple[str, list[str], list[str]]:
    """Load `url` in a fresh tab; return (session, console errors, URLs fetched that are not file:/data:)."""
    target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
    session = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        cdp.call(f"{domain}.enable", session)
    cdp.call("Emulation.setDeviceMetricsOverride", session, width=width, height=900, deviceScaleFactor=1, mobile=False)
    cdp.events.clear()
    cdp.call("Page.navigate", session, url=url)
    cdp.wait_for("Page.loadEventFired")
    errors, fetched = [], []
    for e in cdp.events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif method == "Runtime.exceptionThrown":
            errors.append(p["exceptionDetails"].get("exception", {}).get("description", str(p["exceptionDetails"])))
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            errors.append(p["entry"]["text"])
        elif method == "Network.requestWillBeSent" and not p["request"]["url"].startswith(("file:", "data:")):
            fetched.append(p["request"]["url"])
    return session, errors, fetched


def evaluate(cdp: DevTools, session: str, expression: str):
    result = cdp.call("Runtime.evaluate", session, expression=expression, returnByValue=True, awaitPromise=True)
    assert "exceptionDetails" not in result, result
    return result["result"].get("value")


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    """A smoke-profile report made through the real CLI: repro run -> pytest -m claims -> repro report.
    Its claims folder holds hinton-kd-helps alone (with its shared base file), so the other specs'
    state does not matter here."""
    tmp = tmp_path_factory.mktemp("smoke")
    spec = ROOT / "claims" / f"{CLAIM}.yaml"
    for rel in [spec.name, *filter(None, [yaml.safe_load(spec.read_text()).get("base")])]:
        (tmp / "claims" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "claims" / rel, tmp / "claims" / rel)
    env = {**os.environ, "REPRO_RESULTS": str(tmp / "results"), "REPRO_CACHE": str(tmp / "cache"),
           "REPRO_PROFILE": "smoke", "REPRO_VERDICTS": str(tmp / "verdicts.json"), "REPRO_CLAIMS": str(tmp / "claims"),
           "REPRO_OUT": str(tmp)}

    def repro(*args):
        done = subprocess.run([sys.executable, "-m", "repro.cli", "--claims", str(tmp / "claims"), *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    repro("run", CLAIM, "--profile", "smoke")
    claims = subprocess.run([sys.executable, "-m", "pytest", "-m", "claims", "-q", "-p", "no:cacheprovider",
                             "tests/test_claims.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert (tmp / "verdicts.json").exists(), claims.stdout[-3000:] + claims.stderr[-3000:]
    repro("report", "--verdicts", str(tmp / "verdicts.json"), "--out", str(tmp / "index.html"))
    return tmp


def test_smoke_report_renders_in_chromium(browser, smoke_report):
    doc = json.loads((smoke_report / "verdicts.json").read_text())
    session, errors, fetched = open_page(browser, (smoke_report / "index.html").as_uri())
    assert errors == [], f"console errors: {errors}"
    assert fetched == [], f"the report fetched from the network: {fetched}"

    page = evaluate(browser, session, """(() => ({
        text: document.body.innerText,
        badges: [...document.querySelectorAll('#summary .badge')].map(b => b.textContent.trim()),
        claims: [...document.querySelectorAll('section.claim')].map(s => s.id),
        variants: [...document.querySelectorAll('article.variant')].map(a => a.id),
        images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth})),
        width: document.documentElement.scrollWidth,
        height: document.documentElement.scrollHeight,
    }))()""")
    for v in doc["verdicts"]:
        assert f"claim-{v['claim']}" in page["claims"]
        assert f"{v['claim']}--{v['profile']}--{v['variant']}" in page["variants"]
        assert v["status"] in page["badges"]
    assert "not evidence" in page["text"].lower()
    assert page["images"], "no figures on the page"
    broken = [i["alt"] for i in page["images"] if not (i["complete"] and i["width"] > 0)]
    assert broken == [], f"images that did not load: {broken}"
    assert page["width"] <= 1280, "the page scrolls sideways at 1280 px"

    shot = browser.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": 1280, "height": min(page["height"], 4000), "scale": 1})
    out = ROOT / ".cache" / "screenshot-smoke.png"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")  # renamed into place: never a half-written PNG
    tmp.write_bytes(base64.b64decode(shot["data"]))
    tmp.replace(out)
    assert out.stat().st_size > 10_000


def test_html_in_a_spec_is_shown_as_text_not_run(browser, smoke_report, tmp_path):
    """A claim statement carrying markup renders literally: no script runs, no element is injected."""
    from repro.report import load_verdicts, render
    from repro.spec import load_claim
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b id="injected">bold</b>'
    claim = load_claim(smoke_report / "claims" / f"{CLAIM}.yaml").model_copy(update={"statement": hostile})
    html = render(load_verdicts(smoke_report / "verdicts.json"), {CLAIM: claim}, smoke_report / "results")
    (tmp_path / "hostile.html").write_text(html)
    session, errors, fetched = open_page(browser, (tmp_path / "hostile.html").as_uri())
    assert errors == [] and fetched == []
    assert evaluate(browser, session, "window.pwned === undefined && !document.getElementById('injected')")
    assert hostile in evaluate(browser, session, "document.body.innerText")
