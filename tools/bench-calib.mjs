#!/usr/bin/env node
// One calibration benchmark run, in its own process so its peak RSS is its own:
//   node tools/bench-calib.mjs MODEL.onnx H W N MODE   (MODE: calib | infer)
// Prints one JSON line: { seconds, samples, maxRssMB }.
import { readdirSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readOnnx } from "../packages/frontends-onnx/dist/index.js";
import { OrtExecutor } from "../packages/ort/dist/index.js";
import { calibrate, streamSamples } from "../packages/calib/dist/index.js";

const [model, H, W, N, mode, imagesDir] = process.argv.slice(2);
const n = Number(N);
const imgs = readdirSync(imagesDir).filter((f) => /\.jpe?g$/i.test(f)).sort().map((f) => join(imagesDir, f));
const list = Array.from({ length: n }, (_, i) => imgs[i % imgs.length]);
const dir = mkdtempSync(join(tmpdir(), "q-bench-"));
const dataList = join(dir, "list.txt");
writeFileSync(dataList, list.join("\n") + "\n");
const g = await readOnnx(model);
const name = g.inputs[0].name;
const shape = [1, 3, Number(H), Number(W)];
g.inputs[0].shape = shape;
const data = { dataList, inputs: [{ name, shape, dtype: "float32", preprocess: { inputShape: shape, scale: [1 / 255, 1 / 255, 1 / 255] } }] };
const t0 = performance.now();
if (mode === "calib") {
  await calibrate(g, { data, method: "kl" });
} else {
  const ex = await OrtExecutor.create(g);
  for await (const s of streamSamples(data)) await ex.run(s.feeds);
  await ex.dispose();
}
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ seconds, samples: n, maxRssMB: process.resourceUsage().maxRSS / 1024 }));
