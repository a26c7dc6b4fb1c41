"""Open the built documentation in headless Chromium and check what it shows.

Usage: ``python docs/check_site.py [BUILD_DIR]`` (default ``docs/_build/html``);
``nox -s docs`` runs it after building the site.

Chromium is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: JSON messages on file descriptors 3 and 4), with
nothing but the standard library. Each page is loaded from disk; once its load
event has fired, the checker reads from the live page:

- every ``<img>``: it must have finished loading and decoded to a non-zero
  size (``complete`` and ``naturalWidth > 0``);
- every link: a link into the site must name a file of the build, and its
  fragment, if any, an element id of that page;
- every request the page made for a file of the site must have succeeded
  (the network log), and the page must have thrown no JavaScript error.

Requests to other hosts (MathJax's CDN, say) cannot succeed on a machine
without internet; they are listed, not counted as failures.

Pages opened: the index, the API index, the page of each family with the
anchor of each of its losses, the gradients page, and the benchmark page.
Exit status 0 when every check passes, 1 otherwise, 2 when Chromium cannot be
found or started (install it: ``apt-get install chromium``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent

# page -> element ids that must be on it (each loss's anchor on its family page)
PAGES: dict[str, tuple[str, ...]] = {
    "index.html": (),
    "api/index.html": (),
    "api/implicit.html": (
        "arraylosses.pointwise_loss",
        "arraylosses.bpr_loss",
        "arraylosses.hinge_loss",
        "arraylosses.adaptive_hinge_loss",
    ),
    "api/explicit.html": (
        "arraylosses.regression_loss",
        "arraylosses.poisson_loss",
        "arraylosses.logistic_loss",
    ),
    "api/gradients.html": ("arraylosses.value_and_grad",),
    "guides/benchmarks.html": (),
}
# the images each page must show (a page that lost its plot would pass otherwise)
REQUIRED_IMAGES = {"guides/benchmarks.html": ("ratios.png",)}

PAGE_TIMEOUT_S = 60.0

INSPECT = """(() => {
  const images = Array.from(document.images).map(img => ({
    src: img.currentSrc || img.src,
    complete: img.complete,
    width: img.naturalWidth,
  }));
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
  const ids = Array.from(document.querySelectorAll('[id]')).map(e => e.id);
  return {title: document.title, images, links, ids};
})()"""


def _high(fd: int) -> int:
    """``fd`` moved to a descriptor >= 10, close-on-exec."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """A headless Chromium, driven over ``--remote-debugging-pipe``."""

    def __init__(self, executable: str) -> None:
        # Chromium reads commands from fd 3 and writes replies and events to fd 4.
        # The pipe ends are moved to fds >= 10 first, so that placing them at 3
        # and 4 in the child cannot overwrite one with the other; every fd of
        # Python's is close-on-exec (PEP 446), so only 3 and 4 reach Chromium.
        commands_read, self._commands = (_high(fd) for fd in os.pipe())
        self._replies, replies_write = (_high(fd) for fd in os.pipe())
        self._profile = tempfile.TemporaryDirectory(prefix="check-site-")

        def plumb() -> None:  # in the child, before exec; dup2 clears close-on-exec
            os.dup2(commands_read, 3)
            os.dup2(replies_write, 4)

        self.process = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",  # root in a container has no user namespaces
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            close_fds=False,
            preexec_fn=plumb,  # noqa: PLW1509 - one thread here; it places the pipe fds
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                msg = "timed out waiting for Chromium"
                raise TimeoutError(msg)
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                msg = "Chromium closed the DevTools pipe (did it crash?)"
                raise RuntimeError(msg)
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        result: dict[str, Any] = json.loads(message)
        return result

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str = ""
    ) -> dict[str, Any]:
        """Send one command and wait for its reply; events meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {
            "id": self._next_id,
            "method": method,
            "params": params or {},
        }
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    msg = f"{method} failed: {reply['error']}"
                    raise RuntimeError(msg)
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> None:
        """Wait for an event of ``method`` from ``session``."""
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        while True:
            if any(
                e.get("method") == method and e.get("sessionId") == session
                for e in self.events
            ):
                return
            self.events.append(self._read_message(deadline))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)
        self._profile.cleanup()


class _Ids(HTMLParser):
    """The element ids of an HTML file (for fragments of pages not opened)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        del tag
        self.ids.update(value for name, value in attrs if name == "id" and value)


def _file_ids(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        parser = _Ids()
        parser.feed(path.read_text(encoding="utf-8"))
        cache[path] = parser.ids
    return cache[path]


def _site_path(url: str, root: Path) -> Path | None:
    """The file of the build that ``url`` names, or None for another site."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    path = Path(unquote(parts.path))
    if path.is_dir() or url.endswith("/"):
        path = path / "index.html"
    try:
        path.relative_to(root)
    except ValueError:
        return None
    return path


def check_page(
    browser: Browser, root: Path, page: str, cache: dict[Path, set[str]]
) -> tuple[list[str], list[str]]:
    """Open ``page`` in a new tab; return (failures, notes)."""
    failures: list[str] = []
    notes: list[str] = []
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send(
        "Target.attachToTarget", {"targetId": target, "flatten": True}
    )["sessionId"]
    for domain in ("Page", "Network", "Runtime"):
        browser.send(f"{domain}.enable", session=session)
    url = (root / page).as_uri()
    started = len(browser.events)
    navigation = browser.send("Page.navigate", {"url": url}, session=session)
    if navigation.get("errorText"):
        failures.append(f"{page}: navigation failed: {navigation['errorText']}")
        browser.send("Target.closeTarget", {"targetId": target})
        return failures, notes
    browser.wait_for("Page.loadEventFired", session)
    # let late images (lazy or scripted) settle
    browser.send(
        "Runtime.evaluate",
        {
            "expression": "new Promise(r => setTimeout(r, 300))",
            "awaitPromise": True,
        },
        session=session,
    )
    found = browser.send(
        "Runtime.evaluate",
        {"expression": INSPECT, "returnByValue": True},
        session=session,
    )["result"]["value"]

    # network: every request for a file of the site must have succeeded
    requests: dict[str, str] = {}
    for event in browser.events[started:]:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            requests[params["requestId"]] = params["request"]["url"]
        elif method == "Network.loadingFailed":
            failed = requests.get(params["requestId"], "?")
            if _site_path(failed, root) is not None or failed.startswith("file:"):
                failures.append(
                    f"{page}: failed to load {failed}: {params.get('errorText')}"
                )
            else:
                notes.append(f"{page}: offline, not loaded: {failed}")
        elif method == "Network.responseReceived":
            status = params["response"].get("status", 200)
            if status >= 400:  # noqa: PLR2004 - HTTP client and server errors
                failures.append(
                    f"{page}: HTTP {status} for {params['response'].get('url')}"
                )
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get(
                "text"
            )
            failures.append(f"{page}: JavaScript error: {text}")

    # images: loaded and decoded
    for image in found["images"]:
        if not image["complete"] or image["width"] == 0:
            failures.append(f"{page}: image not shown: {image['src']}")
    for name in REQUIRED_IMAGES.get(page, ()):
        if not any(
            image["src"].endswith(name) and image["width"] > 0
            for image in found["images"]
        ):
            failures.append(f"{page}: the image {name} is not on the page")

    # anchors that must be on the page
    ids = set(found["ids"])
    failures.extend(
        f"{page}: no element with id {anchor!r}"
        for anchor in PAGES[page]
        if anchor not in ids
    )

    # internal links: the file exists, and so does the fragment
    internal = 0
    for link in found["links"]:
        path = _site_path(link, root)
        if path is None:
            if link.startswith("file:"):
                failures.append(f"{page}: link out of the site: {link}")
            continue
        internal += 1
        if not path.is_file():
            failures.append(f"{page}: broken link {link} (no such file)")
            continue
        fragment = unquote(urlsplit(link).fragment)
        if fragment:
            target_ids = ids if path == (root / page) else _file_ids(path, cache)
            if fragment not in target_ids:
                failures.append(f"{page}: broken link {link} (no id {fragment!r})")
    shown = sum(image["width"] > 0 for image in found["images"])
    print(
        f"  {page}: {found['title']!r}: {shown} of {len(found['images'])} images "
        f"shown, {internal} internal links resolved, "
        f"{len(PAGES[page])} required anchors present"
    )
    browser.send("Target.closeTarget", {"targetId": target})
    return failures, notes


def find_chromium() -> str | None:
    names = [os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser"]
    for name in names:
        if name and (found := shutil.which(name)):
            return found
    return None


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else HERE / "_build" / "html").resolve()
    if not (root / "index.html").is_file():
        print(f"error: no built site at {root} (run sphinx-build first)")
        return 2
    executable = find_chromium()
    if executable is None:
        print(
            "error: Chromium is not installed, and the built site must be checked "
            "in a real browser. Install Debian's package: `apt-get install -y "
            "chromium` (or name a Chromium binary in $CHROMIUM)."
        )
        return 2
    version = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"Checking {root} in {version or executable} (headless)")
    try:
        browser = Browser(executable)
        browser.send("Browser.getVersion")
    except (OSError, RuntimeError, TimeoutError) as error:
        print(f"error: could not start Chromium: {error}")
        return 2
    failures: list[str] = []
    notes: list[str] = []
    cache: dict[Path, set[str]] = {}
    try:
        for page in PAGES:
            page_failures, page_notes = check_page(browser, root, page, cache)
            failures += page_failures
            notes += page_notes
    finally:
        browser.close()
    for note in sorted(set(notes)):
        print(f"  note: {note}")
    if failures:
        print(f"FAILED: {len(failures)} problems")
        for failure in failures:
            print(f"  {failure}")
        return 1
    print(f"OK: {len(PAGES)} pages, no missing image, no broken internal link")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
