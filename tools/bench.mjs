#!/usr/bin/env node
// pnpm bench: throughput of the executors on real models from ../shared/test-models.
// Prints samples/s of ONNX Runtime returning outputs only, ONNX Runtime returning every
// intermediate value too (what calibration needs), and the reference interpreter.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { execFileSync } from "node:child_process";
import { ReferenceExecutor, readNpy, Tensor } from "../packages/ir/dist/index.js";
import { readOnnx } from "../packages/frontends-onnx/dist/index.js";
import { OrtExecutor } from "../packages/ort/dist/index.js";

const shared = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "shared", "test-models");
if (!existsSync(shared)) {
  console.log(`bench: ${shared} not found; the benchmarks need the shared test models`);
  process.exit(0);
}

const MODELS = [
  { id: "PP-OCRv4 det 1x3x640x640", path: "paddleocr-onnx/ch_PP-OCRv4_det_infer.onnx", input: ["x", "paddleocr-onnx/ref/det_0/input_x.npy"] },
  { id: "FastestDet 1x3x352x352", path: "yolo/fastestdet/FastestDet.onnx", input: ["input.1", "yolo/fastestdet/ref/input.npy"], first: true },
  { id: "ResNet20 1x3x32x32", path: "torch/resnet20_cifar10/resnet20_cifar10.onnx", input: ["input", "torch/resnet20_cifar10/ref/input.npy"], first: true },
];

async function timeIt(fn, { minSeconds, minRuns, maxRuns }) {
  await fn(); // warm-up
  const t0 = performance.now();
  let runs = 0;
  while (runs < minRuns || (performance.now() - t0 < minSeconds * 1000 && runs < maxRuns)) {
    await fn();
    runs++;
  }
  const s = (performance.now() - t0) / 1000;
  return { runs, seconds: s, perSec: runs / s };
}

const rows = [];
for (const m of MODELS) {
  const g = await readOnnx(join(shared, m.path));
  let x = await readNpy(join(shared, m.input[1]));
  if (m.first && x.shape[0] > 1) x = new Tensor(x.dtype, [1, ...x.shape.slice(1)], x.data.slice(0, x.size / x.shape[0]));
  const feeds = { [m.input[0]]: x };
  const plain = await OrtExecutor.create(g);
  const outOnly = await timeIt(() => plain.run(feeds), { minSeconds: 3, minRuns: 5, maxRuns: 500 });
  await plain.dispose();
  const all = await OrtExecutor.create(g, { expose: "all" });
  let count = 0;
  const withAll = await timeIt(async () => { count = Object.keys(await all.run(feeds, { all: true })).length; }, { minSeconds: 3, minRuns: 5, maxRuns: 500 });
  await all.dispose();
  const kept = await OrtExecutor.create(g, { expose: "all", reuseOutputs: true });
  let bytes = 0;
  const withKept = await timeIt(async () => {
    const r = await kept.run(feeds, { all: true });
    bytes = Object.values(r).reduce((s, t) => s + (t.data.byteLength ?? 0), 0);
  }, { minSeconds: 3, minRuns: 5, maxRuns: 500 });
  await kept.dispose();
  const ref = new ReferenceExecutor(g);
  const refT = await timeIt(() => ref.run(feeds), { minSeconds: 2, minRuns: 1, maxRuns: 50 });
  rows.push({ model: m.id, ortOut: outOnly.perSec, ortAll: withAll.perSec, ortKept: withKept.perSec, values: count, mb: bytes / 1e6, ratio: outOnly.perSec / withAll.perSec, ratioKept: outOnly.perSec / withKept.perSec, ref: refT.perSec });
}

const f = (v) => v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2).padStart(8);
console.log("\nexecutor throughput, samples/s (batch 1, 2 threads)\n");
console.log(`${"model".padEnd(26)} ${"ORT outputs".padStart(12)} ${"ORT all".padStart(9)} ${"ORT all, kept buffers".padStart(22)} ${"values".padStart(7)} ${"MB/sample".padStart(10)} ${"reference".padStart(10)}`);
for (const r of rows) {
  console.log(`${r.model.padEnd(26)} ${f(r.ortOut).padStart(12)} ${f(r.ortAll).padStart(9)} ${(f(r.ortKept).trim() + " (x" + r.ratioKept.toFixed(2) + ")").padStart(22)} ${String(r.values).padStart(7)} ${r.mb.toFixed(1).padStart(10)} ${f(r.ref).padStart(10)}`);
  console.log(`${"".padEnd(26)} time ratio all/outputs-only: ${r.ratio.toFixed(2)} (fresh buffers), ${r.ratioKept.toFixed(2)} (kept buffers)`);
}
console.log("\ntime ratio = time per sample with every intermediate value returned / outputs only (aim: < 1.3);\nMB/sample = bytes of all values returned per sample");

// Calibration: wall time of calibrate() (one pass, statistics for every quantization point, KL)
// divided by plain float inference over the same images (both decode and preprocess the images),
// and peak RSS for 64 vs 640 samples (streaming keeps it flat).
const here = dirname(fileURLToPath(import.meta.url));
const coco = join(shared, "coco128", "images", "val2017");
const runOne = (model, h, w, n, mode) =>
  JSON.parse(execFileSync(process.execPath, [join(here, "bench-calib.mjs"), join(shared, model), h, w, String(n), mode, coco], { encoding: "utf8" }).trim().split("\n").pop());
console.log("\ncalibration (KL, coco128 images, batch 1)\n");
console.log(`${"model".padEnd(26)} ${"samples".padStart(7)} ${"infer s".padStart(8)} ${"calib s".padStart(8)} ${"calib/infer".padStart(12)} ${"peak RSS MB".padStart(12)}`);
for (const [id, model, h, w] of [["PP-OCRv4 det 1x3x320x320", "paddleocr-onnx/ch_PP-OCRv4_det_infer.onnx", "320", "320"], ["FastestDet 1x3x352x352", "yolo/fastestdet/FastestDet.onnx", "352", "352"]]) {
  for (const n of [64, 640]) {
    const inf = runOne(model, h, w, n, "infer");
    const cal = runOne(model, h, w, n, "calib");
    console.log(`${id.padEnd(26)} ${String(n).padStart(7)} ${inf.seconds.toFixed(2).padStart(8)} ${cal.seconds.toFixed(2).padStart(8)} ${(cal.seconds / inf.seconds).toFixed(2).padStart(12)} ${cal.maxRssMB.toFixed(0).padStart(12)}`);
  }
}
console.log("\ncalib/infer target < 1.5; peak RSS for 640 samples should match 64 within 10 %");
