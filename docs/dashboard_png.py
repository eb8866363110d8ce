"""Make docs/dashboard.png: the dashboard over a store, in headless Chromium (Playwright).

    python docs/dashboard_png.py STORE [docs/dashboard.png]

The picture is made over a 3 x 3 sweep (batch 16/64/256 x LR 0.5/0.05/0.005, an MLP on the
built-in digits, 15 epochs): a spec named "digits-study" with data.name = "digits", model.name =
"mlp", train.optimizer = "sgd", momentum 0.9, epochs = 15 and that grid, run by
``batchlab sweep SPEC --store digits.db``, then, from the store's folder,
``python docs/dashboard_png.py digits.db``. The PNG is reduced to 256 colours to stay small.
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from batchlab.web.server import make_server


def main(store: Path, out: Path) -> None:
    server = make_server(store, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1500, "height": 1150})
            page.goto(url)
            page.wait_for_function("() => +document.querySelector('#chart-a').dataset.points > 0 && "
                                   "document.querySelector('#diagnosis').textContent.length > 0",
                                   timeout=60_000)
            page.check("#chart-a .bl-log")  # per-step losses over decades read best on a log axis
            box = page.locator("#chart-b .u-over").bounding_box()  # hover: the legend shows values
            page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.55)
            png = page.screenshot()
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(256)
    image.save(out, optimize=True)
    print(f"{out}: {out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "docs/dashboard.png"))
