"""export --format web and its page, in a real browser: Debian's chromium driven headless by Playwright.

The browser tests skip, with one line, only where chromium is not installed (the README's test
command installs it with apt-get, and ONNX Runtime Web with npm, before the tests run).
"""

import os
import shutil
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import huge_png, refused, tiny_config, write_ab_folder
from PIL import Image

from keras_pix2pix import cli, onnx_weights, train, web
from keras_pix2pix.exports import export
from keras_pix2pix.translation import predict

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium; the README's test command does it)"
)
needs_runtime = pytest.mark.skipif(
    web.find_runtime("auto") is None,
    reason="needs ONNX Runtime Web beside the page (cd export/browser && npm install; the README's test command does it)",
)
SETTLED = "['ready', 'done', 'error'].includes(document.getElementById('status').dataset.state)"
WORKED = "['done', 'error'].includes(document.getElementById('status').dataset.state)"


def _image(height, width, seed):
    """Smooth shapes and fine noise, as RGB uint8: resizing and JPEG both have something to do."""
    rows, columns = np.mgrid[0:height, 0:width]
    random = np.random.RandomState(seed)
    smooth = np.stack([np.sin(rows / 9.0 + phase) * np.cos(columns / 13.0) for phase in (0, 1, 2)], axis=-1)
    return np.clip(127.5 + 90 * smooth + random.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(work directory, the site of its 64 px generator, the export's lines): trained 2 steps, float16 weights."""
    base = tmp_path_factory.mktemp("web")
    workdir = str(base / "run64")
    folder = write_ab_folder(base / "pairs", count=3, size=64)
    train.fit(tiny_config(dataset=folder, image_size=64, steps=2), workdir, verbose=False)
    lines = []
    report = export(workdir, str(base / "exports"), formats=("web",), log=lines.append)
    inputs = base / "inputs"
    inputs.mkdir()
    picture = _image(200, 300, 1)
    Image.fromarray(picture).save(inputs / "wide.png")
    Image.fromarray(picture).save(inputs / "photo.jpg", quality=85)
    Image.fromarray(_image(40, 48, 2)).save(inputs / "small.png")
    for name in os.listdir(inputs):
        shutil.copyfile(inputs / name, os.path.join(report["web"]["path"], name))
    predict(workdir, [str(inputs)], str(base / "predicted"), mode="export", log=lambda line: None, verbose=False)
    return workdir, report["web"]["path"], lines, base / "predicted"


def _serve(folder, isolated=True):
    server = web.site_server(folder, 0, isolated=isolated)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (apt-get install -y chromium; the README's test command does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


class Visit:
    """A fresh page that records every request's host and every console message."""

    def __init__(self, browser, **options):
        self.page = browser.new_page(**options)
        self.hosts, self.console = set(), []
        self.page.on("request", lambda request: self.hosts.add(request.url.split("/")[2]))
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def open(self, url, timeout=60):
        """Opens url and waits until the page is ready, done or failed; returns (its state, its message)."""
        self.page.goto(url)
        self.page.wait_for_function(WORKED if "image=" in url else SETTLED, timeout=timeout * 1000)
        return self.page.get_attribute("#status", "data-state"), self.page.inner_text("#status")

    def output(self):
        width, height, pixels = self.page.evaluate(
            """() => { const canvas = document.getElementById('output');
                return [canvas.width, canvas.height,
                        Array.from(canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data)]; }"""
        )
        return np.array(pixels, np.uint8).reshape(height, width, 4)


def _expected(predicted, name):
    return np.asarray(Image.open(predicted / (os.path.splitext(name)[0] + ".png")).convert("RGB")).astype(int)


@needs_chromium
@needs_runtime
def test_the_page_translates_a_png_and_a_jpeg_as_predict_does_offline(site, browser):
    _, folder, _, predicted = site
    server, address = _serve(folder)
    visit = Visit(browser)
    # 300x200: above the model's 64 px, so tiles; 48x40: resized to 64 and back.
    for name, sizing in (("wide.png", "tiles"), ("photo.jpg", "tiles"), ("small.png", "resized")):
        state, message = visit.open(f"{address}/index.html?image={name}")
        assert state == "done" and sizing in message, message
        output = visit.output()
        expected = _expected(predicted, name)
        assert output.shape[:2] == expected.shape[:2] and (output[..., 3] == 255).all()
        difference = np.abs(output[..., :3].astype(int) - expected)
        # Float32 in both: a value within rounding distance of a half may land on the other byte.
        assert difference.max() <= 1 and (difference > 0).mean() < 0.02, (name, difference.max(), (difference > 0).mean())
    assert visit.hosts == {address.split("/")[2]}
    assert not visit.console, visit.console
    # Served cross-origin isolated: WebAssembly threads are on.
    assert visit.page.evaluate("crossOriginIsolated")
    server.shutdown()


@needs_chromium
@needs_runtime
def test_the_file_picker_the_save_button_and_a_phone_sized_screen(site, browser, tmp_path):
    _, folder, _, predicted = site
    server, address = _serve(folder)
    visit = Visit(browser, viewport={"width": 390, "height": 844}, accept_downloads=True)
    state, _ = visit.open(f"{address}/index.html")
    assert state == "ready"
    assert visit.page.is_disabled("#save")
    visit.page.set_input_files("#file", os.path.join(folder, "small.png"))
    visit.page.wait_for_function(WORKED, timeout=60000)
    assert visit.page.get_attribute("#status", "data-state") == "done"
    with visit.page.expect_download() as download:
        visit.page.click("#save")
    assert download.value.suggested_filename == "small_pix2pix.png"
    download.value.save_as(tmp_path / "saved.png")
    saved = np.asarray(Image.open(tmp_path / "saved.png").convert("RGB")).astype(int)
    assert np.abs(saved - _expected(predicted, "small.png")).max() <= 1
    # A file dropped on the page is translated too, and saved under its own name.
    visit.page.evaluate(
        """async () => {
            const blob = await (await fetch('wide.png')).blob();
            const transfer = new DataTransfer();
            transfer.items.add(new File([blob], 'dropped.png', { type: 'image/png' }));
            document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }));
        }"""
    )
    visit.page.wait_for_function("document.getElementById('status').textContent.startsWith('Translated 300x200')")
    with visit.page.expect_download() as download:
        visit.page.click("#save")
    assert download.value.suggested_filename == "dropped_pix2pix.png"
    # Nothing wider than the phone's screen.
    assert visit.page.evaluate("document.documentElement.scrollWidth") <= 390
    assert not visit.console, visit.console
    server.shutdown()


@needs_chromium
def test_an_unreachable_runtime_shows_an_error_on_the_page_within_10_seconds(site, browser, tmp_path):
    _, folder, _, _ = site
    # The same model in a site without a runtime copy: the page asks the CDN, which is blocked.
    with open(os.path.join(folder, "generator.onnx"), "rb") as file:
        web.write_site(str(tmp_path / "cdn"), file.read(), None)
    server, address = _serve(str(tmp_path / "cdn"))
    visit = Visit(browser)
    blocked = []

    def only_this_machine(route):
        if route.request.url.startswith(address):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    visit.page.route("**/*", only_this_machine)
    started = time.monotonic()
    state, message = visit.open(f"{address}/index.html", timeout=10)
    assert time.monotonic() - started < 10
    assert state == "error" and visit.page.is_visible("#status")
    assert message.startswith(f"ONNX Runtime Web could not be loaded from {web.cdn_url()}"), message
    assert blocked and all(url.startswith(web.cdn_url()) for url in blocked), blocked
    server.shutdown()


@needs_chromium
@needs_runtime
def test_bad_models_and_bad_images_are_errors_on_the_page(site, browser, tmp_path):
    _, folder, _, _ = site
    with open(os.path.join(folder, "small.png"), "rb") as file:
        (tmp_path / "broken.png").write_bytes(file.read()[:300])
    huge_png(tmp_path / "huge.png", 20000, 20000)
    for name in ("broken.png", "huge.png"):
        shutil.copyfile(tmp_path / name, os.path.join(folder, name))
    server, address = _serve(folder)
    visit = Visit(browser)
    state, message = visit.open(f"{address}/index.html?model=missing.onnx")
    assert (state, message) == ("error", "The model missing.onnx could not be downloaded: HTTP 404.")
    state, message = visit.open(f"{address}/index.html?model=wide.png")
    assert state == "error" and message.startswith("wide.png: not an ONNX model"), message
    state, message = visit.open(f"{address}/index.html?image=broken.png")
    assert (state, message) == ("error", "broken.png is not an image this browser can read (corrupt or truncated).")
    state, message = visit.open(f"{address}/index.html?image=huge.png")
    assert state == "error" and message.startswith("huge.png is 20000x20000, over this page's limit of"), message
    # The next image is translated: an error does not stop the page.
    visit.page.set_input_files("#file", os.path.join(folder, "small.png"))
    visit.page.wait_for_function("document.getElementById('status').dataset.state === 'done'", timeout=60000)
    server.shutdown()


@needs_chromium
@needs_runtime
def test_a_256_px_model_translates_at_its_own_size_and_without_isolation_on_one_thread(browser, tmp_path):
    import keras

    from keras_pix2pix.models import build_generator

    path = str(tmp_path / "g256.keras")
    build_generator(image_size=256, filters=2).save(path)
    report = export(path, str(tmp_path / "exports"), formats=("web",), web_weights="float32", log=lambda line: None)
    folder = report["web"]["path"]
    picture = _image(200, 300, 3)
    Image.fromarray(picture).save(os.path.join(folder, "wide.png"))
    predict(path, [os.path.join(folder, "wide.png")], str(tmp_path / "predicted"), mode="export",
            log=lambda line: None, verbose=False)
    server, address = _serve(folder, isolated=False)
    visit = Visit(browser)
    state, message = visit.open(f"{address}/index.html?image=wide.png")
    assert state == "done" and "tiles" in message, message
    output = visit.output()
    assert output.shape[:2] == (200, 300)
    assert np.abs(output[..., :3].astype(int) - _expected(tmp_path / "predicted", "wide.png")).max() <= 1
    assert "256x256" in visit.page.inner_text("#about") and "1 thread (the page is not cross-origin isolated" in (
        visit.page.inner_text("#about")
    )
    assert not visit.console, visit.console
    server.shutdown()
    keras.backend.clear_session()


def test_the_export_writes_a_site_and_says_how_to_try_it(site):
    _, folder, lines, _ = site
    names = sorted(os.listdir(folder))
    assert {"index.html", "page.js", "pix2pix.js", "generator.onnx"} <= set(names)
    with open(os.path.join(folder, "generator.onnx"), "rb") as file:
        metadata = onnx_weights.metadata(file.read())
    assert metadata["keras_pix2pix.height"] == "64" and metadata["keras_pix2pix.weights"] == "float16"
    with open(os.path.join(folder, "index.html")) as file:
        page = file.read()
    if web.find_runtime("auto"):
        assert sorted(os.listdir(os.path.join(folder, "ort"))) == sorted(web.RUNTIME_FILES)
        assert '<meta name="onnxruntime" content="ort/">' in page
    assert any(line.startswith(f"web: {folder} (site ") and "PSNR" in line for line in lines), lines
    assert lines[-1] == f"try it: keras-pix2pix serve {folder}, then open http://127.0.0.1:8000/"


def test_without_a_runtime_copy_the_page_loads_the_pinned_one_from_its_cdn_and_the_export_says_so(site, tmp_path):
    workdir, _, _, _ = site
    lines = []
    report = export(workdir, str(tmp_path), formats=("web",), web_runtime="cdn", web_weights="int8", log=lines.append)
    folder = report["web"]["path"]
    assert not os.path.exists(os.path.join(folder, "ort"))
    with open(os.path.join(folder, "index.html")) as file:
        assert f'<meta name="onnxruntime" content="{web.cdn_url()}">' in file.read()
    assert web.cdn_url() == f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{web.runtime_version()}/dist/"
    assert any(line.startswith(f"note: the site holds no copy of ONNX Runtime Web, so the page loads it from "
                               f"{web.cdn_url()}") for line in lines), lines
    # int8 weights: about a quarter of float32's, and their parity printed.
    assert report["web"]["parity"]["psnr"] >= 25
    with open(os.path.join(folder, "generator.onnx"), "rb") as file:
        assert onnx_weights.metadata(file.read())["keras_pix2pix.weights"] == "int8"


def test_a_runtime_folder_without_the_runtime_is_refused_in_one_line(site, capsys, tmp_path):
    workdir, _, _, _ = site
    (tmp_path / "dist").mkdir()
    refused(
        capsys, r"--web-runtime must be auto, cdn or a folder of ONNX Runtime Web's dist files .*; .*dist lacks "
        r"ort.wasm.min.mjs, ort-wasm-simd-threaded.mjs, ort-wasm-simd-threaded.wasm$",
        "export", "--model", workdir, "--output", tmp_path / "out", "--format", "web", "--web-runtime", tmp_path / "dist",
    )
    assert not os.path.exists(tmp_path / "out")


def test_stored_weights_shrink_the_file_and_keep_close_to_float32(site):
    _, folder, _, _ = site
    import onnxruntime

    with open(os.path.join(folder, "generator.onnx"), "rb") as file:
        # The site's file holds float16 weights: back to float32 values for the comparison.
        content = file.read()
    images = np.random.RandomState(0).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    sizes, outputs = {}, {}
    for storage in ("float16", "int8"):
        stored = onnx_weights.stored_as(_as_float32(content), storage)
        sizes[storage] = len(stored)
        session = onnxruntime.InferenceSession(stored, providers=["CPUExecutionProvider"])
        outputs[storage] = session.run(None, {"images": images})[0]
    reference = onnxruntime.InferenceSession(_as_float32(content), providers=["CPUExecutionProvider"])
    reference = reference.run(None, {"images": images})[0]
    assert sizes["int8"] < 0.6 * sizes["float16"]
    assert np.abs(outputs["float16"] - reference).mean() < 1e-3
    assert np.abs(outputs["int8"] - reference).mean() < 3e-2


def _as_float32(content):
    """A model whose weights went through stored_as(float16) with float32 weights again (the Casts folded)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(content)
    casts = {node.input[0]: node.output[0] for node in model.graph.node
             if node.op_type == "Cast" and node.input[0].endswith("_float16")}
    initializers = [
        numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), casts[tensor.name])
        if tensor.name in casts else tensor for tensor in model.graph.initializer
    ]
    nodes = [node for node in model.graph.node if not (node.op_type == "Cast" and node.input[0] in casts)]
    del model.graph.initializer[:], model.graph.node[:]
    model.graph.initializer.extend(initializers)
    model.graph.node.extend(nodes)
    return model.SerializeToString()


def test_serve_sends_the_isolation_headers_and_the_types_browsers_insist_on(tmp_path):
    for name in ("index.html", "ort.mjs", "ort.wasm"):
        (tmp_path / name).write_bytes(b"x")
    server, address = _serve(str(tmp_path))
    headers = {name: urllib.request.urlopen(f"{address}/{name}").headers for name in ("index.html", "ort.mjs", "ort.wasm")}
    assert headers["index.html"]["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["index.html"]["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert headers["ort.mjs"]["Content-Type"] == "text/javascript"
    assert headers["ort.wasm"]["Content-Type"] == "application/wasm"
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(f"{address}/../../etc/passwd")
    server.shutdown()


def test_serve_refuses_a_missing_site_and_a_bad_port_in_one_line(capsys, tmp_path):
    refused(capsys, r"is not a folder: serve takes the site folder export --format web wrote", "serve", tmp_path / "no")
    refused(capsys, r"--port must be an integer between 1 and 65535; got 70000", "serve", tmp_path, "--port", "70000")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "--help"])
    assert exit_info.value.code == 0 and "cross-origin isolated" in " ".join(capsys.readouterr().out.split())
