"""Every HTML page the pipelines write, opened in headless Chromium: every image loads,
no console error, no request leaves the page (tests/support/browser.py).

One more page is one more line in PAGES: (the session fixture of the run that writes it,
the page's path inside that run folder). Skips when Chromium is missing; .ci/run installs
Debian's chromium, so CI runs it.
"""

from __future__ import annotations

import pytest

from tests.support.browser import assert_page_renders, check_page, find_chromium

PAGES = [
    ("drawn_pneumonia_run", "eda/eda.html"),
    ("drawn_pneumonia_run", "evaluator/report.html"),
    ("drawn_pneumonia_run", "explainer/report.html"),
    ("synthetic_run", "explainer/report.html"),  # + localization and sanity-check sections
    ("multilabel_run", "evaluator/report.html"),  # per finding, beside CheXNet's AUCs
    ("multilabel_run", "explainer/report.html"),  # maps per finding, localization per finding
    ("heart_run", "evaluator/report.html"),
    ("heart_run", "explainer/report.html"),
]


@pytest.mark.parametrize("run, page", PAGES)
def test_page_renders_in_chromium(request, run, page):
    if find_chromium() is None:  # before making a run only to skip
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium)")
    assert_page_renders(request.getfixturevalue(run).run_dir / page)


def test_the_check_sees_broken_images_errors_and_requests_that_leave(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>bad</title>"
        '<link rel="stylesheet" href="https://cdn.example.com/style.css"></head><body>'
        '<img alt="web" src="https://example.com/x.png"><img alt="beside" src="x.png">'
        '<script>console.error("boom"); notDefined();</script></body></html>'
    )
    seen = check_page(page)
    assert (seen.images, seen.loaded, sorted(seen.broken)) == (2, 0, ["beside", "web"])
    assert "boom" in seen.errors and any("notDefined" in e for e in seen.errors)
    assert any("cdn.example.com" in b for b in seen.blocked)
    assert any("example.com/x.png" in b for b in seen.blocked)
    with pytest.raises(AssertionError):
        assert_page_renders(page)
