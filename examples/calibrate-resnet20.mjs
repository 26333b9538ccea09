#!/usr/bin/env node
// Calibrate ResNet-20 on CIFAR-10 images with the library API (no CLI) and write a TPU-MLIR
// cali_table. Run after `pnpm build`, with ../shared/test-models beside the repository:
//   node examples/calibrate-resnet20.mjs [method]
import { readdirSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { readOnnx } from "../packages/frontends-onnx/dist/index.js";
import { calibrate, parseCaliMethod } from "../packages/calib/dist/index.js";
import { writeCaliTable, pythonTimestamp } from "../packages/backend-sophgo/dist/index.js";

const shared = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "shared", "test-models");
const method = parseCaliMethod(process.argv[2] ?? "use_kl");
const g = await readOnnx(join(shared, "torch/resnet20_cifar10/resnet20_cifar10.onnx"));

// 100 CIFAR-10 test images, 10 per class, listed in a data list (one sample per line)
const root = join(shared, "cifar10-test");
const images = readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== "ref")
  .flatMap((d) => readdirSync(join(root, d.name)).sort().slice(0, 10).map((f) => join(root, d.name, f)));
const dataList = join(mkdtempSync(join(tmpdir(), "q-example-")), "list.txt");
writeFileSync(dataList, images.join("\n") + "\n");

const shape = [1, 3, 32, 32];
const result = await calibrate(g, {
  method,
  data: {
    dataList,
    inputs: [{
      name: "input", shape, dtype: "float32",
      // RGB, x' = (x - mean) * scale: ImageNet mean/std as the model was trained with
      preprocess: { inputShape: shape, pixelFormat: "rgb", mean: [123.675, 116.28, 103.53], scale: [1 / 58.395, 1 / 57.12, 1 / 57.375] },
    }],
  },
  onProgress: (done, total) => process.stderr.write(`\r${done}/${total}`),
});
process.stderr.write("\n");

await writeCaliTable("resnet20_cali_table", {
  header: { mlirVersion: "q example", mlir: "resnet20", generatedTime: pythonTimestamp(), histogramNumber: 2048, sampleNumber: result.samples },
  entries: result.entries.map(({ name, threshold, min, max }) => ({ name, threshold, min, max })),
  blocks: [],
});
console.log(`resnet20_cali_table: ${result.entries.length} tensors from ${result.samples} samples (${method}), ${result.collectSeconds.toFixed(2)} s`);
