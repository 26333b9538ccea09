import { existsSync, readdirSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ReferenceExecutor, readNpy, type Feeds, type Graph, type Tensor } from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { readTf } from "./index.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG, cosine } from "../../../tools/testing/shared-models.js";

const MODELS = ["blazeface", "emotion", "iris", "nanodet"];

if (!HAVE_SHARED) console.warn(`[frontends-tf] ${SKIP_SHARED_MSG}`);

/** max |a - b| and the range of b. */
function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): { err: number; range: number } {
  let err = 0, lo = Infinity, hi = -Infinity;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
    lo = Math.min(lo, b[i]!);
    hi = Math.max(hi, b[i]!);
  }
  return { err, range: hi - lo };
}

interface Case { img: string; feeds: Feeds; refs: Record<string, Tensor> }

async function casesFor(model: string, g: Graph): Promise<Case[]> {
  const refDir = resolve(SHARED, "tf-pb", model, "ref");
  const out: Case[] = [];
  for (const img of readdirSync(refDir).filter((d) => d.startsWith("img_")).sort()) {
    const dir = resolve(refDir, img);
    const feeds: Feeds = {};
    for (const inp of g.inputs) feeds[inp.name] = await readNpy(resolve(dir, `input_${inp.name}.npy`));
    const refs: Record<string, Tensor> = {};
    for (const o of g.outputs) refs[o.name] = await readNpy(resolve(dir, `tfjs_${o.name}.npy`));
    out.push({ img, feeds, refs });
  }
  return out;
}

function check(what: string, got: Tensor | undefined, ref: Tensor): { cos: number; err: number; range: number } {
  expect(got, `${what}: missing`).toBeDefined();
  expect([...got!.shape], `${what}: shape`).toEqual([...ref.shape]);
  const a = got!.toFloat32(), b = ref.toFloat32();
  const cos = cosine(a, b);
  const { err, range } = maxAbs(a, b);
  expect(cos, `${what}: cosine`).toBeGreaterThanOrEqual(0.9999);
  expect(err, `${what}: max abs error vs range ${range}`).toBeLessThanOrEqual(1e-3 * range);
  return { cos, err, range };
}

describe.skipIf(!HAVE_SHARED)("readTf on the shared tf-pb models (TF.js references)", () => {
  for (const model of MODELS) {
    const pb = resolve(SHARED, "tf-pb", model, `${model}.pb`);
    it.skipIf(!existsSync(pb))(`${model}: reference interpreter and ONNX Runtime reproduce TF.js`, async () => {
      const g = await readTf(pb);
      expect(g.opsets).toEqual({ "": 17 });
      const cases = await casesFor(model, g);
      expect(cases.length).toBeGreaterThan(0);
      const ref = new ReferenceExecutor(g);
      const ort = await OrtExecutor.create(g);
      const lines: string[] = [];
      try {
        for (const c of cases) {
          const r1 = await ref.run(c.feeds);
          const r2 = await ort.run(c.feeds);
          for (const [name, t] of Object.entries(c.refs)) {
            const a = check(`${model}/${c.img}/${name} (reference)`, r1[name], t);
            const b = check(`${model}/${c.img}/${name} (ort)`, r2[name], t);
            lines.push(`${model} ${c.img} ${name}: ref cos=${a.cos.toFixed(7)} maxabs=${a.err.toExponential(2)} | ort cos=${b.cos.toFixed(7)} maxabs=${b.err.toExponential(2)} (range ${a.range.toPrecision(4)})`);
          }
        }
      } finally {
        await ort.dispose();
        await ref.dispose();
      }
      if (process.env.Q_TF_REPORT) console.log(lines.join("\n"));
    });
  }
});
