// run_ort.mjs runs an ONNX model in onnxruntime-node (the real ONNX Runtime,
// CPU execution provider) and writes its first output, for gozoo's export
// tests and for trying an exported model by hand.
//
// usage: ZOO_ORT_DIR=DIR node run_ort.mjs MODEL.onnx INPUT C,H,W OUT BATCH...
//
//   DIR     a folder holding node_modules/onnxruntime-node, installed with
//           npm install --ignore-scripts onnxruntime-node@1.30.0
//   INPUT   raw little-endian float32 images (N, C, H, W), N ≥ every BATCH;
//           or "random" for seeded pseudo-random values in [-1, 1)
//   OUT     prefix of the outputs: one raw little-endian float32 file
//           OUT.BATCH.bin per BATCH, holding the output for the first
//           BATCH images
//
// It prints one JSON line: the model's input and output names and, per run,
// the batch size and output dimensions.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

function fail(msg) {
  console.error(`run_ort: ${msg}`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length < 5) {
  fail('usage: ZOO_ORT_DIR=DIR node run_ort.mjs MODEL.onnx INPUT|random C,H,W OUT BATCH...');
}
const [modelPath, inputPath, chw, outPrefix, ...batchArgs] = args;
const dir = process.env.ZOO_ORT_DIR;
if (!dir) {
  fail('set ZOO_ORT_DIR to a folder where `npm install --ignore-scripts onnxruntime-node@1.30.0` was run');
}
let ort;
try {
  ort = createRequire(path.join(path.resolve(dir), 'package.json'))('onnxruntime-node');
} catch (e) {
  fail(`cannot load onnxruntime-node from ${dir}: ${e.message}; run npm install --ignore-scripts onnxruntime-node@1.30.0 there`);
}

const [c, h, w] = chw.split(',').map(Number);
const batches = batchArgs.map(Number);
if (![c, h, w, ...batches].every((v) => Number.isInteger(v) && v > 0)) {
  fail(`C,H,W ${chw} and batch sizes ${batchArgs.join(' ')} must be positive integers`);
}
const per = c * h * w;
const need = Math.max(...batches) * per;
let images;
if (inputPath === 'random') {
  images = new Float32Array(need);
  let s = 12345;
  for (let i = 0; i < need; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    images[i] = (s / 2 ** 32) * 2 - 1;
  }
} else {
  const buf = readFileSync(inputPath);
  // Copy: a Buffer's offset into its ArrayBuffer need not be 4-aligned.
  images = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  if (images.length < need) {
    fail(`${inputPath} holds ${images.length} values, fewer than the ${need} of ${Math.max(...batches)} images of ${chw}`);
  }
}

const session = await ort.InferenceSession.create(modelPath);
const report = { inputNames: session.inputNames, outputNames: session.outputNames, runs: [] };
for (const n of batches) {
  const x = new ort.Tensor('float32', images.subarray(0, n * per), [n, c, h, w]);
  const out = await session.run({ [session.inputNames[0]]: x });
  const y = out[session.outputNames[0]];
  writeFileSync(`${outPrefix}.${n}.bin`, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  report.runs.push({ batch: n, dims: y.dims });
}
console.log(JSON.stringify(report));
