// Runs pix2pix.js in Node on raw RGBA bytes, as the page does in the browser:
//     node check.mjs generator.onnx input.rgba width height output.rgba [repeats]
// The package's tests compare its output with Keras; with repeats, bench/infer.py reads the
// median milliseconds per translation from the printed JSON line.
import { readFileSync, writeFileSync } from "node:fs";
import * as ort from "onnxruntime-web";
import { translate } from "./pix2pix.js";

const [model, input, width, height, output, repeats = "0"] = process.argv.slice(2);
const session = await ort.InferenceSession.create(readFileSync(model), { executionProviders: ["wasm"] });
const rgba = readFileSync(input);
writeFileSync(output, await translate(ort, session, rgba, Number(width), Number(height)));
const times = [];
for (let repeat = 0; repeat < Number(repeats); repeat++) {
  const started = performance.now();
  await translate(ort, session, rgba, Number(width), Number(height));
  times.push(performance.now() - started);
}
if (times.length) console.log(JSON.stringify({ ms: times.sort((a, b) => a - b)[Math.floor(times.length / 2)] }));
