import { describe, expect, it, beforeAll } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readOnnx } from "@q/frontends-onnx";
import { OrtExecutor } from "@q/ort";
import type { Graph } from "@q/ir";
import { calibrate, CALI_METHODS, quantPoints, prepareForCalibration, type CaliMethod } from "./index.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG } from "../../../tools/testing/shared-models.js";

const S = (p: string) => resolve(SHARED, p);
const resnetData = (inputNum: number) => ({
  dataset: S("cifar10-test"),
  inputNum,
  inputs: [{
    name: "input", shape: [1, 3, 32, 32], dtype: "float32" as const,
    preprocess: { inputShape: [1, 3, 32, 32], pixelFormat: "rgb" as const, mean: [123.675, 116.28, 103.53], scale: [1 / 58.395, 1 / 57.12, 1 / 57.375] },
  }],
});

let g: Graph;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "q-calib-"));
  if (HAVE_SHARED) g = await readOnnx(S("torch/resnet20_cifar10/resnet20_cifar10.onnx"));
});

describe.skipIf(!HAVE_SHARED)("calibrate on ResNet20 with CIFAR-10 images", () => {
  it("lists quantization points in graph order, sharing statistics through rearranging ops", () => {
    const pts = quantPoints(prepareForCalibration(g));
    expect(pts[0]!.name).toBe("input");
    expect(pts.filter((p) => p.opType === "Conv")).toHaveLength(19 + 2 * 0);
    const flat = pts.find((p) => p.opType === "Flatten")!;
    expect(flat.source).not.toBe(flat.name);
  });

  for (const method of CALI_METHODS) {
    it(`${method}: every threshold > 0 and <= the observed abs-max`, async () => {
      const r = await calibrate(g, { data: resnetData(16), method: method as CaliMethod });
      expect(r.samples).toBe(16);
      expect(r.entries.length).toBeGreaterThan(40);
      for (const e of r.entries) {
        const s = r.stats.get(e.name)!;
        expect(e.threshold, e.name).toBeGreaterThan(0);
        expect(e.threshold, e.name).toBeLessThanOrEqual(Math.max(s.absmax, 1e-5) * (1 + 1e-6));
      }
    });
  }

  it("KLD thresholds are at most the max thresholds", async () => {
    const kl = await calibrate(g, { data: resnetData(16), method: "kl", cacheDir: join(dir, "cache") });
    const mx = await calibrate(g, { data: resnetData(16), method: "max", cacheDir: join(dir, "cache") });
    expect(mx.fromCache).toBe(true);
    kl.entries.forEach((e, i) => expect(e.threshold).toBeLessThanOrEqual(mx.entries[i]!.threshold * (1 + 1e-6)));
  });

  it("a second run with --cache reads the statistics and does not run the model", async () => {
    const cache = join(dir, "cache2");
    let built = 0;
    const counting = async (gg: Graph, fetch: string[]) => {
      built++;
      return OrtExecutor.create(gg, { expose: fetch, reuseOutputs: true });
    };
    const a = await calibrate(g, { data: resnetData(8), cacheDir: cache, executor: counting });
    const b = await calibrate(g, { data: resnetData(8), cacheDir: cache, executor: counting });
    expect(built).toBe(1);
    expect(a.fromCache).toBe(false);
    expect(b.fromCache).toBe(true);
    expect(b.entries).toEqual(a.entries);
    // other data: the cache does not apply
    const c = await calibrate(g, { data: resnetData(9), cacheDir: cache, executor: counting });
    expect(c.fromCache).toBe(false);
  });
});

describe.skipIf(HAVE_SHARED)("calibrate", () => {
  it.skip(SKIP_SHARED_MSG, () => {});
});
