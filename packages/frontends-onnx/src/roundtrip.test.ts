import { describe, expect, it } from "vitest";
import * as ort from "onnxruntime-node";
import { readFileSync } from "node:fs";
import { Tensor } from "@q/ir";
import { decodeOnnx, encodeOnnx, readOnnx } from "./index.js";
import { HAVE_SHARED, ONNX_MODELS, SKIP_SHARED_MSG, feedsFor, relMaxDiff } from "../../../tools/testing/shared-models.js";

/**
 * read -> write of every ONNX model in ../shared/test-models runs in ONNX Runtime and gives the
 * outputs of the original file (max |diff| <= 1e-5 of each output's range).
 */
async function runOrt(model: Uint8Array, feeds: Record<string, Tensor>) {
  const s = await ort.InferenceSession.create(model, { graphOptimizationLevel: "disabled", intraOpNumThreads: 2, logSeverityLevel: 3 });
  const f: Record<string, ort.Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) f[k] = new ort.Tensor(t.dtype as "float32", t.data as Float32Array, [...t.shape]);
  const r = await s.run(f);
  await s.release();
  return r;
}

describe.skipIf(!HAVE_SHARED)("ONNX round trip on the shared models", () => {
  for (const c of ONNX_MODELS) {
    it(`${c.id}: read -> write gives the same outputs under ONNX Runtime`, async () => {
      const g = await readOnnx(c.path);
      const bytes = encodeOnnx(g);
      const again = decodeOnnx(bytes);
      expect(again.nodes.length).toBe(g.nodes.length);
      expect(again.initializers.size).toBe(g.initializers.size);
      const feeds = await feedsFor(c, g);
      const a = await runOrt(readFileSync(c.path), feeds);
      const b = await runOrt(bytes, feeds);
      expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
      for (const k of Object.keys(a)) {
        expect(b[k]!.dims).toEqual(a[k]!.dims);
        const x = Array.from(b[k]!.data as Float32Array, Number);
        const y = Array.from(a[k]!.data as Float32Array, Number);
        expect(relMaxDiff(x, y), `output ${k}`).toBeLessThanOrEqual(1e-5);
      }
    });
  }
});

describe.skipIf(HAVE_SHARED)("ONNX round trip on the shared models", () => {
  it.skip(SKIP_SHARED_MSG, () => {});
});
