"""The browser: `export --format web` writes a static site that translates on the visitor's machine.

The page (export/browser, the template) runs the generator's ONNX file with ONNX Runtime Web in
WebAssembly; nothing is uploaded. A site is a plain folder any static host serves:

    index.html, page.js, pix2pix.js   the page: its markup, its interface, its arithmetic
    generator.onnx                    the export-mode generator, weights stored as --web-weights
    ort/                              ONNX Runtime Web (RUNTIME_FILES), when a local copy was found;
                                      otherwise the page loads the pinned version from its CDN

WebAssembly runs on several threads only where the page is cross-origin isolated: served with
ISOLATION_HEADERS, as `keras-pix2pix serve SITE` (serve below) does on 127.0.0.1.
"""

import functools
import http.server
import json
import os
import shlex
import shutil

from keras_pix2pix.config import UsageError
from keras_pix2pix.options import Serve, check_setting, defaults

# The page's own files, copied from the template.
TEMPLATE_FILES = ("index.html", "page.js", "pix2pix.js")
# What the page loads of ONNX Runtime Web's dist folder: its WebAssembly build alone (CPU).
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# The page's tag that says where the runtime is: export fills in its content.
RUNTIME_TAG = '<meta name="onnxruntime" content="">'
# Cross-origin isolation, which SharedArrayBuffer (and so WebAssembly threads) needs.
ISOLATION_HEADERS = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
WEB_RUNTIMES_HELP = "auto, cdn or a folder of ONNX Runtime Web's dist files"
# serve's port unless told: its option's default.
_PORT = defaults(Serve).port


def template_folder():
    """The page's template: the installed package's copy (setup.py maps export/browser there), else the source tree's."""
    installed = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser")
    if os.path.isfile(os.path.join(installed, "index.html")):
        return installed
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export", "browser")


def runtime_version():
    """The pinned ONNX Runtime Web version: the one export/browser/package.json installs."""
    with open(os.path.join(template_folder(), "package.json")) as file:
        return json.load(file)["dependencies"]["onnxruntime-web"]


def cdn_url():
    """Where the page loads the pinned runtime from when the site holds no copy."""
    return f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{runtime_version()}/dist/"


def find_runtime(web_runtime="auto"):
    """The folder holding RUNTIME_FILES to copy into a site, or None for the CDN.

    Args:
        web_runtime: "auto" (the copy `npm install` puts beside the template, else the CDN), "cdn",
            or a folder of ONNX Runtime Web's dist files (from `npm install onnxruntime-web`).

    Example:
    >>> find_runtime("cdn") is None
    True
    """
    if web_runtime == "cdn":
        return None
    if web_runtime == "auto":
        beside = os.path.join(template_folder(), "node_modules", "onnxruntime-web", "dist")
        return beside if all(os.path.isfile(os.path.join(beside, name)) for name in RUNTIME_FILES) else None
    missing = [name for name in RUNTIME_FILES if not os.path.isfile(os.path.join(web_runtime, name))]
    if missing:
        raise UsageError(
            f"--web-runtime must be {WEB_RUNTIMES_HELP} (node_modules/onnxruntime-web/dist after npm install "
            f"onnxruntime-web@{runtime_version()}); {web_runtime} lacks {', '.join(missing)}"
        )
    return web_runtime


def write_site(folder, model_content, runtime):
    """Writes a site into folder (which must not exist): the page, generator.onnx and the runtime.

    Args:
        folder: the site's folder, created here.
        model_content: the serialized ONNX generator, with its metadata (exports.onnx_model).
        runtime: a folder of RUNTIME_FILES to copy (find_runtime), or None to load them from cdn_url().
    """
    template = template_folder()
    os.makedirs(os.path.join(folder, "ort") if runtime else folder)
    for name in TEMPLATE_FILES[1:]:
        shutil.copyfile(os.path.join(template, name), os.path.join(folder, name))
    with open(os.path.join(template, "index.html"), encoding="utf-8") as file:
        page = file.read()
    if page.count(RUNTIME_TAG) != 1:
        raise RuntimeError(f"the page template {template}/index.html must hold {RUNTIME_TAG} once")
    page = page.replace(RUNTIME_TAG, RUNTIME_TAG.replace('content=""', f'content="{"ort/" if runtime else cdn_url()}"'))
    with open(os.path.join(folder, "index.html"), "w", encoding="utf-8") as file:
        file.write(page)
    with open(os.path.join(folder, "generator.onnx"), "wb") as file:
        file.write(model_content)
    for name in RUNTIME_FILES if runtime else ():
        shutil.copyfile(os.path.join(runtime, name), os.path.join(folder, "ort", name))


def serve_command(site):
    """The one command that serves a site cross-origin isolated on 127.0.0.1, and where to open it."""
    return f"keras-pix2pix serve {shlex.quote(site)}, then open http://127.0.0.1:{_PORT}/"


class _Handler(http.server.SimpleHTTPRequestHandler):
    isolated = True
    # Module scripts and streamed WebAssembly need these types, whatever the system's mime.types says.
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
    }

    def end_headers(self):
        for name, value in ISOLATION_HEADERS.items() if self.isolated else ():
            self.send_header(name, value)
        # A new export in the same folder is seen at once.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format, *arguments):
        # Each request is not news; the caller's stderr stays its own.
        pass


def site_server(site, port=_PORT, *, host="127.0.0.1", isolated=True):
    """An HTTP server of the site's folder (not yet serving: call serve_forever), cross-origin isolated or not.

    Args:
        site: the folder to serve.
        port: the port; 0 picks a free one (server.server_address[1] says which).
        host: the address to listen on: this machine alone by default.
        isolated: send ISOLATION_HEADERS, so that WebAssembly runs on several threads.

    Example:
    >>> server = site_server(".", 0)
    >>> server.server_address[0]
    '127.0.0.1'
    >>> server.server_close()
    """
    if not os.path.isdir(site):
        raise UsageError(f"{site} is not a folder: serve takes the site folder export --format web wrote")
    handler = type("Handler", (_Handler,), {"isolated": isolated})
    try:
        return http.server.ThreadingHTTPServer((host, port), functools.partial(handler, directory=site))
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror} (pass another --port)") from None


def serve(site, port=_PORT, log=print):
    """Serves a site on 127.0.0.1, cross-origin isolated, until interrupted (Ctrl+C).

    Args:
        site: the folder export --format web wrote.
        port: the port to listen on.
        log: where the address line goes.
    """
    check_setting("port", port)
    server = site_server(site, port)
    log(f"serving {site} at http://127.0.0.1:{server.server_address[1]}/ (cross-origin isolated); Ctrl+C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
