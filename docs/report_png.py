"""Make docs/report.png: the first screen of an experiment's report, in headless Chromium.

    python docs/report_png.py STORE [EXPERIMENT] [docs/report.png]

The picture is the report of ``batchlab demo`` (experiment "demo", the default), 1280 x 900: it
shows the "What to pick" block the report opens with. The PNG is reduced to 256 colours to stay
small.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from batchlab.report import write_report
from batchlab.store import Store


def main(store: Path, experiment: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "report.html"
        with Store(store, create=False) as st:
            write_report(st, experiment, html)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(html.as_uri())
            page.wait_for_function("() => document.body.dataset.imagesOk !== undefined", timeout=60_000)
            png = page.screenshot()
            browser.close()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(256)
    image.save(out, optimize=True)
    print(f"{out}: {out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]), args[1] if len(args) > 1 else "demo",
         Path(args[2] if len(args) > 2 else "docs/report.png"))
