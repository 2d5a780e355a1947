"""Opening one of our HTML pages in headless Chromium, the way a reader's browser does.

`check_page(path)` copies the page alone into an empty folder (so a reference to a file
beside it would break, as it does for a page that is mailed), adds at the top of <head> a
Content-Security-Policy that allows data: images and inline styles only, and a script
that records console errors, script errors, every request the policy stopped (with its
URL) and, on load, how many images decoded. `chromium --headless --dump-dom` prints the
DOM once the page settled; the record is read back from it. Nothing leaves the machine:
Chromium also resolves every host name to nothing.

Chromium's DevTools protocol (selenium, playwright) would give the same facts but needs
a driver or a browser download; the policy's violation events name each blocked request,
which is what "no request leaves the page" means.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from benchmarks.machine import find_chromium

# Root in a container: no sandbox, no GPU, no background traffic, no name resolution.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=10000",
)

POLICY = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
)

RECORDER = """<script>
(function () {
  var record = {errors: [], blocked: [], images: 0, loaded: 0, broken: []};
  var consoleError = console.error;
  console.error = function () {
    record.errors.push(Array.prototype.map.call(arguments, String).join(" "));
    consoleError.apply(console, arguments);
  };
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && target.tagName) {
      record.errors.push("failed to load <" + target.tagName.toLowerCase() + "> " +
        String(target.src || target.href || "").slice(0, 80));
    } else {
      record.errors.push("script error: " + event.message);
    }
  }, true);
  document.addEventListener("securitypolicyviolation", function (event) {
    record.blocked.push(event.violatedDirective + " " + String(event.blockedURI).slice(0, 120));
  });
  window.addEventListener("load", function () {
    var images = document.images;
    record.images = images.length;
    for (var i = 0; i < images.length; i++) {
      if (images[i].complete && images[i].naturalWidth > 0) { record.loaded++; }
      else { record.broken.push(images[i].alt || String(images[i].src).slice(0, 60)); }
    }
    setTimeout(function () {
      var out = document.createElement("pre");
      out.id = "page-check-record";
      out.textContent = JSON.stringify(record);
      document.body.appendChild(out);
    }, 0);
  });
})();
</script>"""


@dataclasses.dataclass(frozen=True)
class PageCheck:
    """What Chromium saw on one page."""

    images: int
    loaded: int
    broken: list[str]
    errors: list[str]  # console.error calls, script errors, elements that failed to load
    blocked: list[str]  # requests the page tried to make (only data: images are allowed)


def instrumented(page: str) -> str:
    """The page with the policy and the recorder first in <head>, before anything loads."""
    match = re.search(r"<head[^>]*>", page, re.IGNORECASE)
    if not match:
        raise AssertionError("the page has no <head>")
    return page[: match.end()] + POLICY + RECORDER + page[match.end() :]


def check_page(path: Path, timeout: float = 120) -> PageCheck:
    """Opens `path` in headless Chromium (skips the test when there is none)."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium)")
    with tempfile.TemporaryDirectory(prefix="page-check-") as work:
        alone = Path(work) / "page"
        alone.mkdir()
        copy = alone / path.name
        copy.write_text(instrumented(path.read_text(encoding="utf-8")), encoding="utf-8")
        result = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={work}/profile", "--dump-dom"]
            + [copy.as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "HOME": work},
        )
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="page-check-record">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the page never finished loading: {result.stdout[-500:]}"
    return PageCheck(**json.loads(html.unescape(found.group(1))))


def assert_page_renders(path: Path, min_images: int = 1) -> PageCheck:
    """Every image loads, no console error, no request leaves the page."""
    seen = check_page(path)
    assert seen.images >= min_images, f"{path}: {seen.images} images"
    assert seen.loaded == seen.images, f"{path}: broken images {seen.broken}"
    assert not seen.errors, f"{path}: {seen.errors}"
    assert not seen.blocked, f"{path}: requests leaving the page {seen.blocked}"
    return seen
