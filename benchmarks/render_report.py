"""Renders an evaluator/report.html in a real headless Chromium: images load, page not blank.

    python benchmarks/render_report.py [path/to/report.html] [--keep]

With no path, it makes a report first: it copies a small Kaggle-layout folder from
../shared/data/chest_xray (30 train images a class + the 16 official val images) to a
temporary folder and runs

    python -m pipelines.pneumonia --data_dir <copy> --epochs 1 --image_size 64 --run_dir <tmp>

then checks that run's evaluator/report.html.

Two checks, each in a fresh Chromium profile with no network:
(a) a copy of the page, alone in a new temporary folder (so any reference to a file beside
    the report or on the web would fail), gets a small script that on window load sets
    `document.title = "imgs:<loaded>/<total>"`, counting images with `complete &&
    naturalWidth > 0`; `chromium --headless --dump-dom --virtual-time-budget=5000` prints
    the DOM and the title is parsed from it;
(b) `--screenshot --window-size=1280,2000` of the page, checked with PIL: pixel standard
    deviation above a threshold and more than one distinct colour.

Prints one line, `report.html: N/N images loaded, screenshot WxH non-blank: True`, and
exits 1 when an image failed, the page has none, or the screenshot is blank (2 when
Chromium or the data is missing).

Chromium comes from Debian's packages; as root, if /usr/bin/chromium is missing:

    apt-get update && apt-get install -y chromium chromium-driver

A script to check any one report by hand (and keep it with --keep); the test suite opens
every page the pipelines write the same way (tests/test_pages_in_browser.py).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "chest_xray"
sys.path.insert(0, str(REPO))  # run as a script: make datasets/ importable for its folder builder

from benchmarks.machine import find_chromium  # noqa: E402
from benchmarks.small_folders import copy_real_folder  # noqa: E402

WINDOW = (1280, 2000)
MIN_PIXEL_STD = 5.0  # grey-level standard deviation of a page with text and plots is far above

# Chromium as root in a container without network: no sandbox (root), no GPU, no
# background fetches, no first-run UI; every host resolves to nothing, so a page that
# still needed the web would show broken images instead of quietly fetching them.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

COUNT_IMAGES = """<script>
window.addEventListener("load", function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) { loaded++; }
  }
  document.title = "imgs:" + loaded + "/" + images.length;
});
</script>
"""


def run_chromium(chromium: str, work: Path, *args: str, timeout: float = 120) -> str:
    """Runs headless Chromium with a new profile folder; returns its stdout."""
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=work))
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HOME": str(work)},
    )
    if result.returncode:
        raise RuntimeError(f"chromium exited with {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def count_loaded_images(chromium: str, report: Path, work: Path) -> tuple[int, int, Path]:
    """(loaded, total) images of `report` as Chromium sees them, and the page copy used."""
    page = report.read_text(encoding="utf-8")
    if "</body>" not in page:
        raise RuntimeError(f"{report} has no </body>")
    alone = Path(tempfile.mkdtemp(prefix="page-", dir=work))
    copy = alone / "report.html"
    head, tail = page.rsplit("</body>", 1)
    copy.write_text(head + COUNT_IMAGES + "</body>" + tail, encoding="utf-8")
    dom = run_chromium(chromium, work, "--dump-dom", "--virtual-time-budget=5000", copy.as_uri())
    match = re.search(r"<title>imgs:(\d+)/(\d+)</title>", dom)
    if not match:
        title = re.search(r"<title>(.*?)</title>", dom, re.S)
        raise RuntimeError(
            f"the load script did not run (title {title.group(1)[:80] if title else 'missing'!r})"
        )
    return int(match.group(1)), int(match.group(2)), copy


def screenshot(chromium: str, page: Path, work: Path) -> tuple[tuple[int, int], bool]:
    """The page's screenshot size and whether it shows anything (not one flat colour)."""
    png = work / "screenshot.png"
    run_chromium(
        chromium,
        work,
        f"--screenshot={png}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--virtual-time-budget=5000",
        page.as_uri(),
    )
    with Image.open(png) as image:
        size = image.size
        pixels = np.asarray(image.convert("RGB"))
    grey_std = float(pixels.mean(axis=2).std())
    colours = len(np.unique(pixels.reshape(-1, 3)[::7], axis=0))
    return size, grey_std > MIN_PIXEL_STD and colours > 1


def make_report(work: Path) -> Path:
    data = copy_real_folder(DATA, work / "chest_xray", per_class=30)
    run_dir = work / "run"
    command = [
        sys.executable,
        "-m",
        "pipelines.pneumonia",
        "--data_dir",
        str(data),
        "--epochs",
        "1",
        "--image_size",
        "64",
        "--run_dir",
        str(run_dir),
        "--quiet",
    ]
    print("making a report:", " ".join(command), flush=True)
    result = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(
            f"pipeline failed ({result.returncode}):\n{result.stdout[-2000:]}"
            f"\n{result.stderr[-3000:]}"
        )
    return run_dir / "evaluator" / "report.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "report",
        nargs="?",
        type=Path,
        help="report.html to check (default: make one from a small pipeline run)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    chromium = find_chromium()
    if not chromium:
        print("chromium not found: apt-get update && apt-get install -y chromium chromium-driver")
        return 2
    if args.report is None and not (DATA / "train").is_dir():
        print(f"no report given and no data at {DATA} to make one")
        return 2
    work = Path(tempfile.mkdtemp(prefix="render-report-"))
    try:
        report = args.report.resolve() if args.report else make_report(work)
        if not report.is_file():
            print(f"{report}: not found")
            return 2
        loaded, total, page = count_loaded_images(chromium, report, work)
        (width, height), non_blank = screenshot(chromium, page, work)
        print(
            f"{report.name}: {loaded}/{total} images loaded, screenshot {width}x{height} "
            f"non-blank: {non_blank}"
        )
        if args.keep:
            print(f"kept {work} (report copy {page}, screenshot {work / 'screenshot.png'})")
        return 0 if total > 0 and loaded == total and non_blank else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
