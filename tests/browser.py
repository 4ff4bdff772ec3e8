"""A real headless Chromium for tests: load a page, read what it rendered, take a screenshot.

Debian's ``chromium`` package, driven over its DevTools protocol (a websocket on loopback, through
websocket-client). ``chromium_or_skip()`` installs the package when it is missing and this process
may (root, apt-get present); elsewhere the test is skipped with the reason.

The flags keep a machine without network quiet: without them Chromium keeps trying to reach
Google's services (sync, component updates, QUIC probes) and floods the log with refused connections.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field

import pytest

CHROMIUM = "chromium"
QUIET_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars")


def chromium_or_skip() -> str:
    """The chromium binary; installs Debian's package when missing and possible, else skips the test."""
    found = shutil.which(CHROMIUM)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get): "
                    "apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = subprocess.run(["apt-get", "install", "-y", "-q", CHROMIUM], env=env, capture_output=True, text=True)
    if install.returncode != 0:  # a stale package list: update once, then try again
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        install = subprocess.run(["apt-get", "install", "-y", "-q", CHROMIUM], env=env, capture_output=True,
                                 text=True)
    found = shutil.which(CHROMIUM)
    if not found:
        pytest.skip(f"apt-get install -y chromium failed: {(install.stderr or install.stdout).strip()[-300:]}")
    return found


@dataclass
class RenderedPage:
    """What Chromium showed: the evaluated ``probe`` result, and every error it reported."""
    probe: object
    console_errors: list[str] = field(default_factory=list)
    screenshot: str | None = None


class DevTools:
    """One page target of a Chromium started with --remote-debugging-port: commands and events."""

    def __init__(self, websocket_url: str):
        import websocket  # websocket-client

        self.socket = websocket.create_connection(websocket_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout_s: float, since: int = 0) -> dict:
        """The first ``method`` event from ``self.events[since:]`` on, waiting for it if need be."""
        deadline = time.monotonic() + timeout_s
        for event in self.events[since:]:
            if event.get("method") == method:
                return event
        while time.monotonic() < deadline:
            self.socket.settimeout(max(0.1, deadline - time.monotonic()))
            message = json.loads(self.socket.recv())
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(f"no {method} within {timeout_s} s")

    def close(self) -> None:
        self.socket.close()


def _wait_until_loaded(tools: DevTools, url: str, timeout_s: float) -> None:
    """The page at ``url`` itself has finished loading (not the about:blank it replaced)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = tools.send("Runtime.evaluate", expression="[document.readyState, decodeURI(location.href)]",
                           returnByValue=True)["result"]["value"]
        if state == ["complete", url]:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not finish loading within {timeout_s} s")


def _errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and failed loads (broken images, blocked requests)."""
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append("exception: " + details.get("exception", {}).get("description", details.get("text", "")))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"log ({params['entry']['source']}): {params['entry']['text']} {params['entry'].get('url', '')}")
    return errors


def _devtools_url(user_data_dir: str, process: subprocess.Popen, timeout_s: float = 30) -> str:
    """The page target's websocket URL; Chromium writes its port to DevToolsActivePort when ready."""
    port_file = os.path.join(user_data_dir, "DevToolsActivePort")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}: {process.stderr.read()[-2000:]}")
        if os.path.exists(port_file):
            lines = open(port_file).read().split()
            if lines:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/list", timeout=10))
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.2)
    raise TimeoutError(f"chromium did not open its DevTools port within {timeout_s} s")


def render(url: str, probe: str, screenshot_path: str | None = None, width: int = 1280, height: int = 900,
           timeout_s: float = 60) -> RenderedPage:
    """Loads ``url`` in a fresh headless Chromium, waits for the load event, evaluates the
    JavaScript expression ``probe`` (its JSON-serialisable value comes back) and saves a
    full-page PNG screenshot to ``screenshot_path``."""
    binary = chromium_or_skip()
    # A profile Chromium still wrote to after it was stopped stays in the temp dir instead of failing the test.
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as user_data_dir:
        # Its own process group, so that stopping it reaches the renderer, GPU and utility processes too.
        process = subprocess.Popen(
            [binary, *QUIET_FLAGS, f"--user-data-dir={user_data_dir}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            tools = DevTools(_devtools_url(user_data_dir, process))
            try:
                for domain in ("Page", "Runtime", "Log"):
                    tools.send(f"{domain}.enable")
                # Only a load event after the navigation counts: about:blank's own can arrive after Page.enable.
                navigated = len(tools.events)
                tools.send("Page.navigate", url=url)
                tools.wait_for("Page.loadEventFired", timeout_s, since=navigated)
                _wait_until_loaded(tools, url, timeout_s)
                value = tools.send("Runtime.evaluate", expression=probe, returnByValue=True, awaitPromise=True)
                if "exceptionDetails" in value:
                    raise RuntimeError(f"probe failed: {value['exceptionDetails']}")
                page = RenderedPage(probe=value["result"].get("value"))
                if screenshot_path:
                    size = tools.send("Page.getLayoutMetrics")["cssContentSize"]
                    shot = tools.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                                      clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                                            "scale": 1})
                    with open(screenshot_path, "wb") as f:
                        f.write(base64.b64decode(shot["data"]))
                    page.screenshot = screenshot_path
                tools.send("Runtime.evaluate", expression="1")  # drains the events sent before it
                page.console_errors = _errors(tools.events)
                return page
            finally:
                tools.close()
        finally:
            _stop(process)


def _stop(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """Ends Chromium and every process it started (they share its process group), and waits for
    them: stopping only the main process left children writing the profile while it was deleted
    ("Directory not empty: 'Default'", a flaky CI run)."""
    def signal_group(sig: int) -> bool:
        try:
            os.killpg(process.pid, sig)
            return True
        except ProcessLookupError:  # the whole group is gone
            return False

    signal_group(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        signal_group(signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + timeout_s
    while signal_group(0) and time.monotonic() < deadline:  # children still shutting down
        time.sleep(0.05)
    signal_group(signal.SIGKILL)
