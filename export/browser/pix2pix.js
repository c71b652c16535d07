// The page's arithmetic: what `keras-pix2pix predict --mode export` does to an image, in JavaScript,
// around the generator's ONNX file run by ONNX Runtime Web. No DOM here: page.js is the interface.
//
// An image is { data: Float32Array (row by row, channels last), height, width, channels }.
// The sizing rules are keras_pix2pix.sizing's (auto, resize, native, tiles) and the resize is
// keras_pix2pix.data.resize's (tf.image.resize bicubic with antialias, Keys' cubic), so that the
// page and predict agree within a grey level; the numbers they need come from the ONNX file's
// metadata (keras_pix2pix.onnx_exports.onnx_metadata).

/** The ONNX file's metadata_props, read from its protobuf: ModelProto field 14, each {key: 1, value: 2}. */
export function onnxMetadata(bytes) {
  const entries = {};
  const text = new TextDecoder();
  for (const field of protobufFields(bytes, 0, bytes.length)) {
    if (field.number !== 14 || field.start === undefined) continue;
    const entry = {};
    for (const part of protobufFields(bytes, field.start, field.end)) {
      if (part.start !== undefined) entry[part.number] = text.decode(bytes.subarray(part.start, part.end));
    }
    entries[entry[1]] = entry[2];
  }
  return entries;
}

function protobufFields(bytes, start, end) {
  const fields = [];
  let position = start;
  const varint = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (position >= end || shift > 63) throw new Error("not an ONNX model (a damaged protobuf)");
      const byte = bytes[position++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (position < end) {
    const key = varint();
    const number = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) fields.push({ number, value: varint() });
    else if (wire === 1 || wire === 5) position += wire === 1 ? 8 : 4;
    else if (wire === 2) {
      const length = varint();
      fields.push({ number, start: position, end: position + length });
      position += length;
    } else throw new Error("not an ONNX model (a damaged protobuf)");
    if (position > end) throw new Error("not an ONNX model (cut short)");
  }
  return fields;
}

/** The model's sizes and rules from its metadata; throws when it was not exported by keras-pix2pix. */
export function modelInfo(metadata) {
  const number = (key) => {
    const value = Number(metadata[`keras_pix2pix.${key}`]);
    if (!Number.isFinite(value)) {
      throw new Error("this ONNX file has no keras-pix2pix metadata: export it with keras-pix2pix export --format web");
    }
    return value;
  };
  return {
    height: number("height"), width: number("width"), inputChannels: number("input_channels"),
    outputChannels: number("output_channels"), multiple: number("multiple"), tileOverlap: number("tile_overlap"),
    nativePixels: number("native_pixels"), maxPixels: number("max_pixels"),
    weights: metadata["keras_pix2pix.weights"] || "float32",
  };
}

/** RGBA bytes (an ImageData's data) as an image in [0, 1] with 1 or 3 channels (tf.image.rgb_to_grayscale's weights). */
export function fromRgba(rgba, width, height, channels) {
  const data = new Float32Array(width * height * channels);
  for (let pixel = 0; pixel < width * height; pixel++) {
    const [red, green, blue] = [rgba[pixel * 4] / 255, rgba[pixel * 4 + 1] / 255, rgba[pixel * 4 + 2] / 255];
    if (channels === 1) data[pixel] = 0.2989 * red + 0.587 * green + 0.114 * blue;
    else data.set([red, green, blue], pixel * 3);
  }
  return { data, height, width, channels };
}

/** An image in [-1, 1] as opaque RGBA bytes, rounded as predict rounds (half to even, as Uint8ClampedArray does). */
export function toRgba(image) {
  const { data, height, width, channels } = image;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let pixel = 0; pixel < width * height; pixel++) {
    for (let channel = 0; channel < 3; channel++) {
      rgba[pixel * 4 + channel] = (data[pixel * channels + (channels === 1 ? 0 : channel)] + 1) * 127.5;
    }
    rgba[pixel * 4 + 3] = 255;
  }
  return rgba;
}

// Keys' cubic convolution kernel (a = -0.5), tf.image.resize's "bicubic".
function keys(x) {
  x = Math.abs(x);
  if (x >= 2) return 0;
  if (x >= 1) return ((-0.5 * x + 2.5) * x - 4) * x + 2;
  return (1.5 * x - 2.5) * x * x + 1;
}

// For each output position along one side, the input positions it reads and their weights, as
// TensorFlow's ScaleAndTranslate computes them with antialias: the kernel widened when shrinking.
function spans(inputSize, outputSize) {
  const inverse = inputSize / outputSize;
  const kernelScale = Math.max(inverse, 1);
  const result = [];
  for (let x = 0; x < outputSize; x++) {
    const sample = (x + 0.5) * inverse;
    const clamp = (value) => Math.min(Math.max(value, 0), inputSize - 1);
    const start = clamp(Math.ceil(sample - 2 * kernelScale - 0.5));
    const end = clamp(Math.floor(sample + 2 * kernelScale - 0.5)) + 1;
    const weights = [];
    let total = 0;
    for (let source = start; source < end; source++) {
      const weight = keys((source + 0.5 - sample) / kernelScale);
      weights.push(weight);
      total += weight;
    }
    result.push({ start, weights: Math.abs(total) > 1e-30 ? weights.map((weight) => weight / total) : weights });
  }
  return result;
}

/** keras_pix2pix.data.resize: bicubic, antialiased when shrinking, clipped to [low, high]. */
export function resize(image, height, width, low, high) {
  const { data, channels } = image;
  const columns = spans(image.width, width);
  const rows = spans(image.height, height);
  // Along the width first, then the height; float rounding aside, the order does not matter.
  const across = new Float32Array(image.height * width * channels);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < width; x++) {
      const { start, weights } = columns[x];
      for (let channel = 0; channel < channels; channel++) {
        let sum = 0;
        for (let index = 0; index < weights.length; index++) {
          sum += weights[index] * data[(y * image.width + start + index) * channels + channel];
        }
        across[(y * width + x) * channels + channel] = sum;
      }
    }
  }
  const result = new Float32Array(height * width * channels);
  for (let y = 0; y < height; y++) {
    const { start, weights } = rows[y];
    for (let x = 0; x < width * channels; x++) {
      let sum = 0;
      for (let index = 0; index < weights.length; index++) sum += weights[index] * across[(start + index) * width * channels + x];
      result[y * width * channels + x] = Math.min(Math.max(sum, low), high);
    }
  }
  return { data: result, height, width, channels };
}

function mapped(image, transform) {
  return { ...image, data: image.data.map(transform) };
}

// Reflection repeated is periodic: 0 1 .. n-1 n-2 .. 1 0 1 .., of period 2n - 2 (keras_pix2pix.sizing._reflect).
function reflectedIndex(position, length) {
  const period = Math.max(2 * length - 2, 1);
  const place = position % period;
  return place < length ? place : period - place;
}

/** The image extended at the bottom and right to (height, width) by reflection, or cut to it. */
export function reflect(image, height, width) {
  const { data, channels } = image;
  const result = new Float32Array(height * width * channels);
  for (let y = 0; y < height; y++) {
    const sourceRow = reflectedIndex(y, image.height) * image.width;
    for (let x = 0; x < width; x++) {
      const source = (sourceRow + reflectedIndex(x, image.width)) * channels;
      result.set(data.subarray(source, source + channels), (y * width + x) * channels);
    }
  }
  return { data: result, height, width, channels };
}

/** predict's auto: resize an image no larger than the model's size, tile a larger one. */
export function autoSizing(image, info) {
  return image.height <= info.height && image.width <= info.width ? "resize" : "tiles";
}

// Tile starts along one side: every tile - overlap, the last aligned with the end (sizing._starts).
function tileStarts(length, tile, overlap) {
  const last = Math.max(length - tile, 0);
  const starts = [];
  for (let start = 0; start < last; start += Math.max(1, tile - overlap)) starts.push(start);
  starts.push(last);
  return starts;
}

// A tile's weights along one side: 1, ramping down across its overlap with each neighbour (sizing._ramp).
function ramp(starts, index, tile) {
  const start = starts[index];
  const before = index > 0 ? starts[index - 1] + tile - start : 0;
  const after = index < starts.length - 1 ? start + tile - starts[index + 1] : 0;
  const weights = new Float32Array(tile);
  for (let position = 0; position < tile; position++) {
    let weight = 1;
    if (before > 0) weight = Math.min(weight, (position + 0.5) / before);
    if (after > 0) weight = Math.min(weight, (tile - position - 0.5) / after);
    weights[position] = weight;
  }
  return weights;
}

// Python's round: halves to even (the overlap in pixels is round(overlap * tile)).
function roundHalfEven(value) {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

async function tiled(run, image, info, onProgress) {
  const [tileHeight, tileWidth] = [info.height, info.width];
  const padded = reflect(image, Math.max(image.height, tileHeight), Math.max(image.width, tileWidth));
  const rows = tileStarts(padded.height, tileHeight, roundHalfEven(info.tileOverlap * tileHeight));
  const columns = tileStarts(padded.width, tileWidth, roundHalfEven(info.tileOverlap * tileWidth));
  const channels = info.outputChannels;
  const total = new Float32Array(padded.height * padded.width * channels);
  const weight = new Float32Array(padded.height * padded.width);
  let done = 0;
  for (let rowIndex = 0; rowIndex < rows.length; rowIndex++) {
    const rowRamp = ramp(rows, rowIndex, tileHeight);
    for (let columnIndex = 0; columnIndex < columns.length; columnIndex++) {
      const [top, left] = [rows[rowIndex], columns[columnIndex]];
      const columnRamp = ramp(columns, columnIndex, tileWidth);
      const tile = new Float32Array(tileHeight * tileWidth * image.channels);
      for (let y = 0; y < tileHeight; y++) {
        const source = ((top + y) * padded.width + left) * image.channels;
        tile.set(padded.data.subarray(source, source + tileWidth * image.channels), y * tileWidth * image.channels);
      }
      const output = await run({ data: tile, height: tileHeight, width: tileWidth, channels: image.channels });
      for (let y = 0; y < tileHeight; y++) {
        for (let x = 0; x < tileWidth; x++) {
          const share = rowRamp[y] * columnRamp[x];
          const place = (top + y) * padded.width + left + x;
          weight[place] += share;
          for (let channel = 0; channel < channels; channel++) {
            total[place * channels + channel] += share * output.data[(y * tileWidth + x) * channels + channel];
          }
        }
      }
      onProgress(++done, rows.length * columns.length);
    }
  }
  const blended = new Float32Array(image.height * image.width * channels);
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width * channels; x++) {
      const place = y * padded.width * channels + x;
      blended[y * image.width * channels + x] = total[place] / weight[Math.floor(place / channels)];
    }
  }
  return { data: blended, height: image.height, width: image.width, channels };
}

/**
 * Translates one image of any size as predict does (keras_pix2pix.sizing.translate_image, export mode).
 *
 * Args:
 *   run: an async function from an image in [-1, 1] whose sides are multiples of info.multiple to
 *     the model's output for it (runner below).
 *   image: the input in [0, 1], with info.inputChannels channels (fromRgba).
 *   info: modelInfo of the ONNX file.
 *   sizing: "auto", "resize", "native" or "tiles".
 *   onProgress: called with (tiles done, tiles in all) as tiles finish.
 * Returns (a Promise of) the output in [-1, 1] at the image's size, and the sizing used.
 *
 * Example:
 *   const { output, sizing } = await translateImage(runner(ort, session), image, info, "auto", () => {});
 */
export async function translateImage(run, image, info, sizing = "auto", onProgress = () => {}) {
  const chosen = sizing === "auto" ? autoSizing(image, info) : sizing;
  const normalized = mapped(image, (value) => value * 2 - 1);
  if (chosen === "resize") {
    const small = mapped(resize(image, info.height, info.width, 0, 1), (value) => value * 2 - 1);
    const output = await run(small);
    onProgress(1, 1);
    return { output: resize(output, image.height, image.width, -1, 1), sizing: chosen };
  }
  if (chosen === "native") {
    if (image.height * image.width > info.nativePixels) {
      throw new Error(`native sizing runs an image whole, and ${image.width}x${image.height} is over its limit of ` +
        `${info.nativePixels / 1e6} megapixels: choose tiles`);
    }
    const up = (length) => Math.ceil(length / info.multiple) * info.multiple;
    const output = await run(reflect(normalized, up(image.height), up(image.width)));
    onProgress(1, 1);
    return { output: reflect(output, image.height, image.width), sizing: chosen };
  }
  if (chosen !== "tiles") throw new Error(`sizing must be auto, resize, native or tiles, not ${sizing}`);
  return { output: await tiled(run, normalized, info, onProgress), sizing: chosen };
}

/** run for translateImage: one image through an ONNX Runtime Web session, as a batch of one. */
export function runner(ort, session) {
  return async (image) => {
    const input = new ort.Tensor("float32", image.data, [1, image.height, image.width, image.channels]);
    const results = await session.run({ [session.inputNames[0]]: input });
    const output = results[session.outputNames[0]];
    const channels = output.dims[3];
    const data = Float32Array.from(output.data);
    input.dispose?.();
    output.dispose?.();
    return { data, height: image.height, width: image.width, channels };
  };
}

/** The (width, height) a PNG or JPEG file's header declares, read before decoding; throws for anything else. */
export function imageSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 24 && png.every((byte, index) => bytes[index] === byte)) {
    return { width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    // JPEG markers up to the first frame header (SOF0 to SOF15, less DHT, JPG and DAC).
    for (let position = 2; position + 9 <= bytes.length; ) {
      if (bytes[position] !== 0xff) break;
      const marker = bytes[position + 1];
      if (marker === 0xff) { position++; continue; }
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { width: view.getUint16(position + 7), height: view.getUint16(position + 5) };
      }
      position += 2 + view.getUint16(position + 2);
    }
    throw new Error("is a JPEG without a readable frame header (corrupt or truncated)");
  }
  throw new Error("is not a PNG or JPEG image");
}
