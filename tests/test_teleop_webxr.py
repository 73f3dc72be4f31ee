"""The WebXR page in headless Chromium: it loads over HTTPS (self-signed certificate made on first run),
connects its WebSocket, and a scripted pose stream injected in the page (non-XR test mode) arrives at the
teleop session, engages the clutch and moves the arm; page buttons send episode commands; the status view
shows what the session reports. Needs Debian's chromium and the playwright Python package."""

from __future__ import annotations

import os
import shutil
import ssl
import urllib.request
from dataclasses import replace

import numpy as np
import pytest

from rig.timing import MonotonicClock
from teleop.config import load_teleop_config
from teleop.webxr.certs import ensure_certificate, fingerprint
from teleop.webxr.server import WebXRServer
from tests.teleop_helpers import HOME, make_session

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_certificate_is_made_once(tmp_path) -> None:
    cert, key, created = ensure_certificate(tmp_path / "c")
    assert created and cert.is_file() and (key.stat().st_mode & 0o777) == 0o600
    again = ensure_certificate(tmp_path / "c")
    assert again == (cert, key, False)
    assert len(fingerprint(cert).split(":")) == 32


@pytest.fixture
def server(tmp_path):
    cfg = load_teleop_config()
    session, executor, arms, _clock = make_session(cfg, clock=MonotonicClock())
    actions: list[str] = []

    def handle(raw: bytes, t: float) -> bool:
        ok = session.handle(raw, t)
        executor.tick(t)  # one executor tick per message stands in for the executor thread
        actions.extend(session.take_actions())
        return ok

    def status() -> dict:
        return {**session.status(), "recording": False, "episode": None, "instruction": "lift the box high",
                "episodes_saved": 0, "episodes_discarded": 0, "last_message": ""}

    srv = WebXRServer(replace(cfg.webxr, host="127.0.0.1", port=0, cert_dir=tmp_path / "cert", status_hz=20.0),
                      handle=handle, status=status).start()
    yield srv, session, executor, arms, actions
    srv.stop()


def test_page_is_served_over_https(server) -> None:
    srv, *_ = server
    ctx = ssl.create_default_context(cafile=str(srv.config.cert_dir / "teleop_cert.pem"))
    ctx.check_hostname = False
    body = urllib.request.urlopen(srv.url, context=ctx, timeout=10).read().decode()
    assert "A2World teleop" in body and "teleop.js" in body
    js = urllib.request.urlopen(srv.url + "teleop.js", context=ctx, timeout=10).read().decode()
    assert "immersive-vr" in js and "hapticActuators" in js


SCRIPT = """async ([n, hz]) => {
  const t = window.a2teleop;
  for (let i = 0; i < 200 && !t.state.connected; i++) await new Promise(r => setTimeout(r, 50));
  const head = [0, 1.6, 0, 0, 0, 0, 1];
  for (let k = 0; k < n; k++) {
    const grip = k >= 10 ? 1.0 : 0.0;
    const dz = k >= 10 ? -0.05 * Math.min(1, (k - 10) / 40) : 0;
    t.sendFrame(head,
      {pose: [-0.2, 1.1, -0.35 + dz, 0, 0, 0, 1], trigger: 0.0, grip: grip, buttons: {}},
      {pose: [0.2, 1.1, -0.35, 0, 0, 0, 1], trigger: 0.0, grip: 0.0, buttons: {}});
    await new Promise(r => setTimeout(r, 1000 / hz));
  }
  t.sendCommand("start");
  return t.state.sent;
}"""


def test_scripted_stream_in_the_page_reaches_the_session(server) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    srv, session, executor, _arms, actions = server
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_context(ignore_https_errors=True).new_page()
            page.goto(srv.url + "?test=1")
            assert "A2World teleop" in page.title()
            sent = page.evaluate(SCRIPT, [90, 60])
            page.wait_for_function("() => window.a2teleop.state.status && window.a2teleop.state.status.accepted >= 60",
                                   timeout=15000)
            assert page.text_content("#s-left") == "ENGAGED"
            page.click("button[data-command=discard]")
            page.fill("#instruction", "lift the box slowly")
            page.click("#set-instruction")
            page.wait_for_timeout(500)
        finally:
            browser.close()
    assert sent == 91
    assert session.filter.counters["accepted"] >= 60  # late ones (a loaded machine) are dropped and counted
    assert session.filter.counters["malformed"] == 0
    assert session.engaged()["left"] and not session.engaged()["right"]
    assert "start" in actions and "discard" in actions and "instruction:lift the box slowly" in actions
    moved = executor.guard.last_command("left")[:3] - HOME[:3]
    assert np.linalg.norm(moved) > 0.005  # the injected forward motion moved the left arm
