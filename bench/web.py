"""The browser page's figures, in headless Chromium: site sizes, load to first translation, translation time.

    python bench/web.py --model /work/runs/city60/run --images ../shared/data/cityscapes/val --count 3

Exports the model's site three times (`--web-weights` float32, float16, int8), then for each opens
`index.html?image=...` in a fresh browser context (nothing cached), served cross-origin isolated on
127.0.0.1, and times from navigation to the first translation drawn; then translates the same
image --repeats more times on one thread (`&threads=1`) and on every core, and reads each time the
page reports. The images are the input halves of --count AB pairs (the model's direction), written
as PNG at the pairs' size; the page's output is compared with `predict --mode export` on them.
Prints the machine, a table and a JSON line. Needs Debian's chromium, Playwright for Python and a
local ONNX Runtime Web (tests/install_browser.sh).
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from machine import describe  # noqa: E402
from PIL import Image  # noqa: E402

from keras_pix2pix import web  # noqa: E402
from keras_pix2pix.exports import export  # noqa: E402
from keras_pix2pix.translation import load_generator, predict  # noqa: E402

WEIGHTS = ("float32", "float16", "int8")
STATE = "document.getElementById('status').dataset.state"


def input_halves(folder, count, direction, destination):
    """The input half of the first `count` AB pairs in folder, as PNG files in destination; their paths."""
    paths = []
    for name in sorted(os.listdir(folder))[:count]:
        pair = np.asarray(Image.open(os.path.join(folder, name)).convert("RGB"))
        half = pair.shape[1] // 2
        image = pair[:, :half] if direction == "AtoB" else pair[:, half:]
        paths.append(os.path.join(destination, os.path.splitext(name)[0] + ".png"))
        Image.fromarray(image).save(paths[-1])
    return paths


def translate(page, url):
    """Opens url, waits for the translation; returns (milliseconds from navigation to done, the page's own time)."""
    page.goto(url)
    page.wait_for_function(f"['done', 'error'].includes({STATE})", timeout=600_000)
    if page.evaluate(STATE) != "done":
        raise SystemExit(f"the page failed: {page.inner_text('#status')}")
    return page.evaluate("performance.now()"), float(page.get_attribute("#status", "data-milliseconds"))


def retranslate(page, repeats):
    """The page's own milliseconds for `repeats` more translations of its image (the sizing menu re-runs it)."""
    times = []
    for index in range(repeats):
        page.evaluate("delete document.getElementById('status').dataset.milliseconds")
        page.select_option("#sizing", "resize" if index % 2 == 0 else "auto")
        page.wait_for_function(
            f"{STATE} === 'done' && document.getElementById('status').dataset.milliseconds", timeout=600_000
        )
        times.append(float(page.get_attribute("#status", "data-milliseconds")))
    return times


def output_pixels(page):
    width, height, pixels = page.evaluate(
        """() => { const canvas = document.getElementById('output');
            return [canvas.width, canvas.height,
                    Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data)]; }"""
    )
    return np.array(pixels, np.uint8).reshape(height, width, 4)[..., :3]


def measure_site(browser, folder, images, predicted, repeats, screenshot=None):
    """One site's row: load to first translation, translation times on one thread and on all, grey levels off predict.

    screenshot: a .jpg path for a picture of the page after its first translation, or None.
    """
    for path in images:
        shutil.copyfile(path, os.path.join(folder, os.path.basename(path)))
    server = web.site_server(folder, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_address[1]}"
    row = {"first": [], "single": [], "multi": [], "grey_levels": 0}
    for path in images:
        name = os.path.basename(path)
        for threads in ("1", ""):
            # Nothing cached: the whole site is fetched again.
            context = browser.new_context(viewport={"width": 1000, "height": 640})
            page = context.new_page()
            first, _ = translate(page, f"{address}/index.html?image={name}" + (f"&threads={threads}" if threads else ""))
            if threads == "":
                row["first"].append(first)
                expected = np.asarray(Image.open(os.path.join(predicted, name)).convert("RGB")).astype(int)
                row["grey_levels"] = max(row["grey_levels"], int(np.abs(output_pixels(page).astype(int) - expected).max()))
                row["threads"] = page.evaluate("document.getElementById('about').textContent")
                if screenshot and path == images[0]:
                    page.screenshot(path=screenshot, type="jpeg", quality=80, full_page=True)
            row["single" if threads else "multi"] += retranslate(page, repeats)
            context.close()
    server.shutdown()
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a work directory or a .keras file")
    parser.add_argument("--images", required=True, help="a folder of AB pairs")
    parser.add_argument("--direction", default=None, help="which half is the input (default: the run's)")
    parser.add_argument("--count", type=int, default=3, help="pairs translated")
    parser.add_argument("--repeats", type=int, default=4, help="translations timed after the first, per image")
    parser.add_argument("--screenshot", help="a .jpg of the float16 page after its first translation")
    arguments = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None or web.find_runtime("auto") is None:
        raise SystemExit("needs Debian's chromium and ONNX Runtime Web beside the page: run tests/install_browser.sh")
    print(describe())
    _, config = load_generator(arguments.model)
    direction = arguments.direction or (config.direction if config else "AtoB")
    from playwright.sync_api import sync_playwright

    rows = {}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        images = input_halves(arguments.images, arguments.count, direction, folder)
        predicted = os.path.join(folder, "predicted")
        predict(arguments.model, images, predicted, mode="export", log=lambda line: None, verbose=False)
        browser = playwright.chromium.launch(executable_path=chromium)
        for version, weights in enumerate(WEIGHTS, 1):
            report = export(arguments.model, os.path.join(folder, "sites"), formats=("web",), version=version,
                            web_weights=weights, log=lambda line: None)["web"]
            screenshot = arguments.screenshot if weights == "float16" else None
            row = measure_site(browser, report["path"], images, predicted, arguments.repeats, screenshot)
            rows[weights] = {
                "site_mb": report["bytes"] / 1e6, "model_mb": report["model_bytes"] / 1e6,
                "psnr_db": report["parity"]["psnr"], "first_s": statistics.median(row["first"]) / 1000,
                "single_ms": statistics.median(row["single"]), "multi_ms": statistics.median(row["multi"]),
                "grey_levels": row["grey_levels"], "about": row["threads"],
            }
        browser.close()
    print(f"images: {arguments.count} of {arguments.images}, {direction}; {rows['float32']['about']}")
    print(f"{'weights':<9}{'site MB':>9}{'model MB':>10}{'PSNR dB':>9}{'first s':>9}{'1 thread ms':>13}"
          f"{'all ms':>8}{'vs 1':>6}{'grey':>6}")
    for weights, row in rows.items():
        print(f"{weights:<9}{row['site_mb']:>9.1f}{row['model_mb']:>10.1f}{row['psnr_db']:>9.1f}{row['first_s']:>9.2f}"
              f"{row['single_ms']:>13.0f}{row['multi_ms']:>8.0f}{row['single_ms'] / row['multi_ms']:>6.2f}"
              f"{row['grey_levels']:>6}")
    print(json.dumps({"machine": describe(), "rows": rows}))


if __name__ == "__main__":
    main()
