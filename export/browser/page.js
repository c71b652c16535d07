// The page's interface: loads ONNX Runtime Web and the model, takes an image (the ?image= URL, a
// dropped file or the file picker), translates it with pix2pix.js and draws the result. Every
// failure ends in data-state="error" with a message on the page, never a silent stall.
import { fromRgba, imageSize, modelInfo, onnxMetadata, runner, toRgba, translateImage } from "./pix2pix.js";

// Long enough for ONNX Runtime Web's small loader module on a slow line; short enough that a
// blocked or silent host shows as an error on the page within 10 s.
const RUNTIME_TIMEOUT_MS = 8000;
const SIZINGS = ["auto", "resize", "native", "tiles"];
const SIZING_NAMES = { resize: "resized to the model's size and back", native: "whole, at its own size", tiles: "in tiles" };

const element = (id) => document.getElementById(id);
const parameters = new URLSearchParams(location.search);
const megabytes = (bytes) => (bytes / 1e6).toFixed(1);
const page = { ort: null, session: null, info: null, image: null, name: "image", busy: false, pending: false, waiting: null };

function setStatus(state, message) {
  const status = element("status");
  status.dataset.state = state;
  status.textContent = message;
}

function showProgress(done, total) {
  const progress = element("progress");
  progress.hidden = false;
  progress.max = Math.max(total, 1);
  progress.value = done;
}

function fail(error) {
  element("progress").hidden = true;
  setStatus("error", error instanceof Error ? error.message : String(error));
}

async function loadRuntime() {
  // Filled in by export: "ort/" beside the page, or the pinned version on its CDN. Empty in the
  // template itself: the copy `npm install` puts beside it.
  const given = document.querySelector('meta[name="onnxruntime"]').content;
  const base = new URL(given || "node_modules/onnxruntime-web/dist/", location.href).href;
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${RUNTIME_TIMEOUT_MS / 1000} s`)), RUNTIME_TIMEOUT_MS);
  });
  let ort;
  try {
    ort = await Promise.race([import(`${base}ort.wasm.min.mjs`), timeout]);
  } catch (error) {
    throw new Error(`ONNX Runtime Web could not be loaded from ${base} (${error.message}); the page needs it to translate.`);
  } finally {
    clearTimeout(timer);
  }
  ort.env.wasm.wasmPaths = base;
  // Threads need SharedArrayBuffer, which only a cross-origin isolated page has.
  const wanted = Number(parameters.get("threads")) || navigator.hardwareConcurrency || 1;
  ort.env.wasm.numThreads = crossOriginIsolated ? Math.max(1, Math.min(wanted, 16)) : 1;
  return ort;
}

async function download(url, signal) {
  let response;
  try {
    response = await fetch(url, { signal });
  } catch (error) {
    throw new Error(`The model ${url} could not be downloaded (${error.message}).`);
  }
  if (!response.ok) throw new Error(`The model ${url} could not be downloaded: HTTP ${response.status}.`);
  const total = Number(response.headers.get("Content-Length")) || 0;
  const chunks = [];
  let received = 0;
  for (const reader = response.body.getReader(); ; ) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    setStatus("loading", `Downloading the model: ${megabytes(received)}${total ? ` of ${megabytes(total)}` : ""} MB`);
    if (total) showProgress(received, total);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

async function loadModel(url) {
  setStatus("loading", "Loading ONNX Runtime Web and the model...");
  // Both at once; a runtime that fails stops the download, whose progress would hide the error.
  const downloading = new AbortController();
  const runtime = loadRuntime().catch((error) => {
    downloading.abort();
    throw error;
  });
  const [ort, bytes] = await Promise.all([runtime, download(url, downloading.signal)]);
  let info;
  try {
    info = modelInfo(onnxMetadata(bytes));
  } catch (error) {
    throw new Error(`${url}: ${error.message}`);
  }
  setStatus("loading", "Starting the model...");
  try {
    page.session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (error) {
    throw new Error(`ONNX Runtime Web could not start the model ${url}: ${error.message || error}`);
  }
  [page.ort, page.info] = [ort, info];
  const threads = ort.env.wasm.numThreads;
  element("about").textContent = `Model ${url}: ${info.width}x${info.height}, ${info.inputChannels} to ` +
    `${info.outputChannels} channels, ${info.weights} weights. ONNX Runtime Web ${ort.env.versions?.web ?? ""}, ` +
    `${threads} thread${threads > 1 ? "s" : ""}` +
    (crossOriginIsolated ? "." : " (the page is not cross-origin isolated: see the README for the headers that give it more).");
  element("progress").hidden = true;
  setStatus("ready", "Ready: drop an image here or choose one.");
}

async function useImage(blob, name) {
  if (!page.info) {
    // Chosen while the model loads: read once its size limit is known (start picks it up).
    page.waiting = [blob, name];
    return;
  }
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let size;
  try {
    size = imageSize(bytes);
  } catch (error) {
    throw new Error(`${name} ${error.message}.`);
  }
  const limit = page.info.maxPixels;
  if (size.width * size.height > limit) {
    throw new Error(`${name} is ${size.width}x${size.height}, over this page's limit of ${limit / 1e6} megapixels.`);
  }
  let bitmap;
  try {
    // As the package reads files: no colour management, alpha not premultiplied, EXIF orientation applied.
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none", imageOrientation: "from-image" });
  } catch (error) {
    throw new Error(`${name} is not an image this browser can read (corrupt or truncated).`);
  }
  const canvas = element("input");
  [canvas.width, canvas.height] = [bitmap.width, bitmap.height];
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  page.image = context.getImageData(0, 0, canvas.width, canvas.height);
  page.name = name.replace(/\.[^.]*$/, "") || "image";
  element("save").disabled = true;
  await translateCurrent();
}

async function translateCurrent() {
  if (!page.session || !page.image) return;
  if (page.busy) {
    page.pending = true;
    return;
  }
  page.busy = true;
  try {
    do {
      page.pending = false;
      await translateOnce();
    } while (page.pending);
  } finally {
    page.busy = false;
  }
}

async function translateOnce() {
  const { width, height, data } = page.image;
  const label = `${width}x${height}`;
  setStatus("working", `Translating ${label}...`);
  const run = runner(page.ort, page.session);
  // A pause before each run lets the page draw its progress between tiles.
  const paced = async (image) => {
    await new Promise((resolve) => setTimeout(resolve, 0));
    return run(image);
  };
  const started = performance.now();
  const image = fromRgba(data, width, height, page.info.inputChannels);
  const { output, sizing } = await translateImage(paced, image, page.info, element("sizing").value, (done, total) => {
    if (total > 1) setStatus("working", `Translating ${label}: tile ${done} of ${total}`);
    showProgress(done, total);
  });
  const canvas = element("output");
  [canvas.width, canvas.height] = [width, height];
  canvas.getContext("2d").putImageData(new ImageData(toRgba(output), width, height), 0, 0);
  const milliseconds = Math.round(performance.now() - started);
  element("progress").hidden = true;
  element("status").dataset.milliseconds = milliseconds;
  element("save").disabled = false;
  const atModelSize = sizing === "resize" && width === page.info.width && height === page.info.height;
  setStatus("done", `Translated ${label} (${atModelSize ? "at the model's size" : SIZING_NAMES[sizing]}) in ${milliseconds} ms.`);
}

function fromFiles(files) {
  if (files && files.length) useImage(files[0], files[0].name).catch(fail);
}

function save() {
  element("output").toBlob((blob) => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${page.name}_pix2pix.png`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }, "image/png");
}

function wire() {
  const drop = element("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    fromFiles(event.dataTransfer.files);
  });
  element("file").addEventListener("change", (event) => fromFiles(event.target.files));
  element("save").addEventListener("click", save);
  const sizing = element("sizing");
  if (SIZINGS.includes(parameters.get("sizing"))) sizing.value = parameters.get("sizing");
  sizing.addEventListener("change", () => translateCurrent().catch(fail));
  window.addEventListener("unhandledrejection", (event) => fail(event.reason));
}

async function start() {
  wire();
  await loadModel(parameters.get("model") || "generator.onnx");
  const url = parameters.get("image");
  if (url) {
    let response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new Error(`The image ${url} could not be downloaded (${error.message}).`);
    }
    if (!response.ok) throw new Error(`The image ${url} could not be downloaded: HTTP ${response.status}.`);
    await useImage(await response.blob(), decodeURIComponent(url.split("/").pop().split("?")[0]) || "image");
  } else if (page.waiting) {
    await useImage(...page.waiting);
  }
}

start().catch(fail);
