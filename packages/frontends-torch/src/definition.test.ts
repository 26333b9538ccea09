import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MissingFileError, ModelFormatError, ReferenceExecutor, Tensor, readNpy } from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { buildFromDefinition, readTorch } from "./index.js";
import { stateDictPickle, zipArchive } from "./testing/fixtures.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG, cosine, relMaxDiff } from "../../../tools/testing/shared-models.js";

const here = dirname(fileURLToPath(import.meta.url));
const EXAMPLE = resolve(here, "../examples/resnet20.mjs");
const R20 = join(SHARED, "torch/resnet20_cifar10");
const tmp = mkdtempSync(join(tmpdir(), "q-torch-def-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tinyWeights(): string {
  const w = Tensor.f32([2, 3], [1, 0, 0, 0, 1, 1]);
  const path = join(tmp, "tiny.pth");
  writeFileSync(path, zipArchive("tiny", stateDictPickle([["fc.weight", { key: "0", storage: w, size: [2, 3], stride: [3, 1] }]]).stop().bytes(), new Map([["0", w]])));
  return path;
}

describe("model-definition route", () => {
  it("runs a user script (default export, models table, named export) on a state dict", async () => {
    const weights = tinyWeights();
    const script = join(tmp, "tiny.mjs");
    writeFileSync(script, [
      "const fc = (b, w) => { const x = b.input('x', 'float32', [1, 3]); b.output(b.linear(x, b.initializer('fc.weight', w.get('fc.weight')))); };",
      "export default (b, w) => fc(b, w);",
      "export const models = { tiny: (b, w, name) => { fc(b, w); b.graph.doc = name; } };",
      "export function other(b, w) { fc(b, w); b.graph.doc = 'other'; }",
    ].join("\n"));
    const g = await buildFromDefinition(script, weights);
    const y = await new ReferenceExecutor(g).run({ x: Tensor.f32([1, 3], [1, 2, 3]) });
    expect(y[g.outputs[0]!.name]!.toArray()).toEqual([1, 5]);
    expect((await buildFromDefinition(script, weights, { modelName: "tiny" })).doc).toBe("tiny");
    expect((await buildFromDefinition(script, weights, { modelName: "other" })).doc).toBe("other");
    expect((await readTorch(weights, { definition: script, modelName: "tiny" })).doc).toBe("tiny");
  });

  it("reports a missing script, a script without a builder and a failing script", async () => {
    const weights = tinyWeights();
    await expect(buildFromDefinition(join(tmp, "nope.mjs"), weights)).rejects.toBeInstanceOf(MissingFileError);
    const empty = join(tmp, "empty.mjs");
    writeFileSync(empty, "export const x = 1;\n");
    await expect(buildFromDefinition(empty, weights)).rejects.toThrow(/exports no function 'build' or a default export/);
    const bad = join(tmp, "bad.mjs");
    writeFileSync(bad, "export function build(b, w) { throw new Error('weight conv9 missing'); }\n");
    const err = await buildFromDefinition(bad, weights).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toMatch(/bad\.mjs.*weight conv9 missing/);
  });
});

describe.skipIf(!HAVE_SHARED)("examples/resnet20.mjs on the real ResNet-20 weights", () => {
  if (!HAVE_SHARED) it.skip(SKIP_SHARED_MSG, () => {});

  for (const weights of ["resnet20_cifar10_state_dict.pth", "orig/resnet20-12fca82f.th"]) {
    it(`reproduces ref/output_logits.npy on both executors from ${weights}`, async () => {
      const g = await buildFromDefinition(EXAMPLE, join(R20, weights), { modelName: "resnet20" });
      expect(g.inputs[0]).toMatchObject({ name: "input", shape: ["N", 3, 32, 32] });
      const x = await readNpy(join(R20, "ref/input.npy"));
      const ref = (await readNpy(join(R20, "ref/output_logits.npy"))).toFloat32();
      const a = (await new ReferenceExecutor(g).run({ input: x })).logits!.toFloat32();
      const ort = await OrtExecutor.create(g);
      const b = (await ort.run({ input: x })).logits!.toFloat32();
      await ort.dispose();
      for (const y of [a, b]) {
        expect(cosine(y, ref)).toBeGreaterThanOrEqual(0.9999);
        expect(relMaxDiff(y, ref)).toBeLessThanOrEqual(1e-3);
      }
    });
  }
});
