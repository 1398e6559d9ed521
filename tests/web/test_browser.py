"""`rhtui serve` in a real browser: headless Chromium loads the page, the dashboard draws in it, a key
pressed in the page reaches rhtui (`p` pauses the session), and a screenshot is taken.

Chromium is driven over the Chrome DevTools Protocol (its websocket, with aiohttp): the page is
loaded, keys are dispatched as the keyboard would (`Input.dispatchKeyEvent`), and the screenshot is
`Page.captureScreenshot`. What the dashboard draws is read from the page's own websocket (a hook
installed before the page's scripts run), since xterm.js paints on a canvas.

Skipped without a Chromium (`make browser-test` installs Debian's; CHROMIUM=PATH names another).
The screenshot goes to $BROWSER_SCREENSHOT (`make browser-test`: docs/serve-screenshot.png), else
into the test's temporary folder. Chromium resolves no name but loopback (--host-resolver-rules), as no test may
reach beyond this machine.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import until, until_async
from tests.web.conftest import plain

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    given = os.environ.get("CHROMIUM")
    if given:
        return given if Path(given).is_file() else shutil.which(given)
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


CHROMIUM = find_chromium()
SCREENSHOT = Path(os.environ["BROWSER_SCREENSHOT"]).absolute() if os.environ.get("BROWSER_SCREENSHOT") else None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason=(
        f"no Chromium found ({', '.join(CANDIDATES)} on PATH, or CHROMIUM=PATH): `make browser-test` "
        "installs Debian's chromium and runs this test")),
]

# Records what the page's websocket receives (the dashboard's output), before textual.js runs.
HOOK = """
(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  window.__rhtui = {text: "", bytes: 0};
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        if (event.data instanceof ArrayBuffer) {
          window.__rhtui.bytes += event.data.byteLength;
          const text = window.__rhtui.text + decoder.decode(new Uint8Array(event.data), {stream: true});
          window.__rhtui.text = text.slice(-400000);
        }
      });
    }
  };
})();
"""


class DevTools:
    """The Chrome DevTools Protocol on one page: call a method, get its result."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        n = next(self.ids)
        await self.ws.send_json({"id": n, "method": method, "params": params})
        while True:
            msg = await self.ws.receive(timeout=60)
            assert msg.type == aiohttp.WSMsgType.TEXT, f"DevTools closed while waiting for {method}: {msg}"
            data = json.loads(msg.data)
            if data.get("id") == n:
                assert "error" not in data, f"{method}: {data['error']}"
                return data.get("result", {})

    async def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=await_promise)
        assert "exceptionDetails" not in result, f"{expression}: {result['exceptionDetails']}"
        return result["result"].get("value")

    async def screen(self) -> str:
        """What the dashboard has drawn since the last `forget()`, escape sequences removed."""
        return plain((await self.evaluate("window.__rhtui ? window.__rhtui.text : ''") or "").encode())

    async def forget(self) -> None:
        await self.evaluate("window.__rhtui.text = ''")

    async def press(self, key: str) -> None:
        """A key as the keyboard sends it: keyDown with its text, then keyUp."""
        code = f"Key{key.upper()}" if key.isalpha() else ""
        vk = ord(key.upper())
        await self.call("Input.dispatchKeyEvent", type="keyDown", key=key, code=code, text=key,
                        unmodifiedText=key, windowsVirtualKeyCode=vk, nativeVirtualKeyCode=vk)
        await self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=vk,
                        nativeVirtualKeyCode=vk)


def start_chromium(profile: Path) -> subprocess.Popen:
    assert CHROMIUM is not None
    args = [
        CHROMIUM, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={profile}",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-sync",
        "--disable-background-networking", "--disable-component-update", "--mute-audio", "--hide-scrollbars",
        "--window-size=1440,900", "--force-device-scale-factor=1",
        # no name resolves but loopback: the page's web font (Google Fonts) fails at once, nothing leaves
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--enable-unsafe-swiftshader",  # WebGL in software, for xterm.js's renderer
        # containers and CI runners lack the namespaces Chromium's sandbox needs; it loads only our page
        "--no-sandbox", "--disable-dev-shm-usage",
        "about:blank",
    ]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=(profile / "chromium.log").open("wb"))


def devtools_port(profile: Path, proc: subprocess.Popen) -> int:
    def port() -> int | None:
        assert proc.poll() is None, "Chromium exited:\n" + (profile / "chromium.log").read_text(errors="replace")
        try:
            first = (profile / "DevToolsActivePort").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first)

    return until(port, timeout=60, interval=0.1, what="Chromium's DevTools port")


async def test_the_dashboard_in_headless_chromium_takes_a_key(serve, tmp_path):
    served = serve("--demo", "--speed", "20", "--data-dir", str(tmp_path / "data"))
    profile = tmp_path / "chromium"
    profile.mkdir()
    shot = SCREENSHOT or tmp_path / "serve-screenshot.png"
    browser = start_chromium(profile)
    try:
        port = devtools_port(profile, browser)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as r:
                targets = await r.json()
            page = next(t for t in targets if t.get("type") == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = DevTools(ws)
                await cdp.call("Page.enable")
                await cdp.call("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
                await cdp.call("Page.navigate", url=served.url)

                async def drawn(*texts: str) -> bool:
                    screen = await cdp.screen()
                    return all(t in screen for t in texts)

                # the dashboard: its student queue, the engine running, a first proposal done
                await until_async(lambda: drawn("rh-alpha", "rh-zeta", "RUNNING", "✔ done"), timeout=90,
                                  interval=0.25, what="the dashboard in the page")
                assert await cdp.evaluate("document.body.classList.contains('-first-byte')")  # splash gone
                assert len(served.note_children()) == 1  # the page's tab runs one rhtui
                await cdp.evaluate("document.querySelector('.xterm-helper-textarea').focus()")
                await cdp.forget()
                t0 = time.monotonic()
                await cdp.press("p")
                await until_async(lambda: drawn("PAUSED"), timeout=60, interval=0.1,
                                  what="the dashboard paused after `p` pressed in the page")
                took = time.monotonic() - t0
                # let xterm.js paint what it received (two animation frames), then take the picture
                await cdp.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
                                   await_promise=True)
                png = base64.b64decode((await cdp.call("Page.captureScreenshot", format="png"))["data"])
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=30)
        except subprocess.TimeoutExpired:
            browser.kill()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000, len(png)
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.write_bytes(png)
    print(f"screenshot: {shot} ({len(png)} bytes); `p` to PAUSED on screen: {took:.2f} s")
