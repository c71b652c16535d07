// Translates an image with the ONNX generator from `keras-pix2pix export --format onnx`, in
// ONNX Runtime Web. The same module runs in the browser (index.html) and in Node, where the
// package's tests check it against Keras.
//
// The ONNX model takes float32 (batch, height, width, 3) in [-1, 1], height and width multiples of
// 2**depth (256 for the paper's U-Net-256), and returns the translated batch in the same layout.

/** The RGB pixels of an RGBA byte array as float32 NHWC data in [-1, 1] (the training scaling). */
export function toModelInput(rgba, width, height) {
  const data = new Float32Array(width * height * 3);
  for (let pixel = 0; pixel < width * height; pixel++) {
    for (let channel = 0; channel < 3; channel++) {
      data[pixel * 3 + channel] = rgba[pixel * 4 + channel] / 127.5 - 1;
    }
  }
  return data;
}

/** The model's NHWC output in [-1, 1] as opaque RGBA bytes, rounded as `predict` rounds. */
export function toImageBytes(data, width, height) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let pixel = 0; pixel < width * height; pixel++) {
    for (let channel = 0; channel < 3; channel++) {
      // Uint8ClampedArray clamps to 0..255 and rounds half to even; predict rounds half to even too.
      rgba[pixel * 4 + channel] = (data[pixel * 3 + channel] + 1) * 127.5;
    }
    rgba[pixel * 4 + 3] = 255;
  }
  return rgba;
}

/**
 * Translates one RGBA image whose width and height are multiples of 2**depth.
 *
 * Args:
 *   ort: the ONNX Runtime Web module (`import * as ort from "onnxruntime-web"`).
 *   session: an `ort.InferenceSession` of generator.onnx.
 *   rgba: the image's RGBA bytes, row by row (an ImageData's `data`).
 *   width, height: its size in pixels.
 * Returns the translated image's RGBA bytes (a Promise).
 *
 * Example:
 *   const session = await ort.InferenceSession.create("generator.onnx");
 *   const output = await translate(ort, session, imageData.data, 256, 256);
 */
export async function translate(ort, session, rgba, width, height) {
  const input = new ort.Tensor("float32", toModelInput(rgba, width, height), [1, height, width, 3]);
  const results = await session.run({ [session.inputNames[0]]: input });
  return toImageBytes(results[session.outputNames[0]].data, width, height);
}
