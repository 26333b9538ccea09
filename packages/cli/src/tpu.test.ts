import { describe, expect, it, beforeAll } from "vitest";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readNpz } from "@q/ir";
import { readCaliTable } from "@q/backend-sophgo";
import { q } from "./test-helpers.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG } from "../../../tools/testing/shared-models.js";

const S = (p: string) => resolve(SHARED, p);


let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "q-tpu-"));
});

function imageList(folder: string, n: number, name: string): string {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/\.(jpe?g|png)$/i.test(e.name)) files.push(join(d, e.name));
    }
  };
  walk(folder);
  const f = join(dir, name);
  writeFileSync(f, files.slice(0, n).join("\n") + "\n");
  return f;
}

interface E2E {
  id: string;
  def: string[];
  shapes: string;
  pre: string[];
  data: () => string;
}

const MODELS: E2E[] = [
  { id: "resnet20", def: ["--model_def", S("torch/resnet20_cifar10/resnet20_cifar10.onnx")], shapes: "[[1,3,32,32]]", pre: ["--mean", "123.675,116.28,103.53", "--scale", "0.0171248,0.0175070,0.0174292", "--pixel_format", "rgb"], data: () => imageList(S("cifar10-test"), 12, "cifar.txt") },
  { id: "fastestdet", def: ["--model_def", S("yolo/fastestdet/FastestDet.onnx")], shapes: "[[1,3,352,352]]", pre: ["--scale", "0.0039216,0.0039216,0.0039216"], data: () => imageList(S("coco128"), 8, "coco.txt") },
  { id: "blazeface", def: ["--model_def", S("onnx/blazeface/blazeface.onnx")], shapes: "[[1,3,128,128]]", pre: ["--mean", "127.5,127.5,127.5", "--scale", "0.0078431,0.0078431,0.0078431", "--pixel_format", "rgb"], data: () => imageList(S("coco128"), 8, "coco.txt") },
  { id: "retinaface", def: ["--model_def", S("caffe/retinaface/retinaface.prototxt"), "--model_data", S("caffe/retinaface/retinaface.caffemodel")], shapes: "[[1,3,480,640]]", pre: ["--mean", "104,117,123"], data: () => imageList(S("coco128"), 4, "coco4.txt") },
  { id: "ppocr-det", def: ["--model_def", S("paddleocr-onnx/ch_PP-OCRv4_det_infer.onnx")], shapes: "[[1,3,320,320]]", pre: ["--mean", "123.675,116.28,103.53", "--scale", "0.0171248,0.0175070,0.0174292"], data: () => imageList(S("paddleocr-onnx/images"), 6, "ocr.txt") },
  { id: "ppocr-rec", def: ["--model_def", S("transformer/ppocrv4-rec-svtr/ch_PP-OCRv4_rec_infer.onnx")], shapes: "[[1,3,48,320]]", pre: ["--mean", "127.5,127.5,127.5", "--scale", "0.0078431,0.0078431,0.0078431"], data: () => imageList(S("paddleocr-onnx/images"), 6, "ocr.txt") },
];
const METHODS = ["use_kl", "use_max", "use_percentile9999", "use_mse", "use_aciq_gauss", "use_aciq_laplace", "use_torch_observer_for_cali"];

describe.skipIf(!HAVE_SHARED)("model_transform + run_calibration end to end", () => {
  for (const m of MODELS) {
    it(`${m.id}: .mlir checks against the original, then a table for every --cali_method`, async () => {
      const work = join(dir, m.id);
      mkdirSync(work, { recursive: true });
      const mlir = join(work, `${m.id}.mlir`);
      const list = m.data();
      const first = readFileSync(list, "utf8").split("\n")[0]!;
      const t = await q("model_transform", "--model_name", m.id, ...m.def, "--input_shapes", m.shapes, ...m.pre,
        "--test_input", first, "--test_result", join(work, `${m.id}_top_outputs.npz`), "--mlir", mlir);
      expect(t.code, t.err).toBe(0);
      expect(t.out).toMatch(/min cosine (1\.0+|0\.9999\d+)/);
      expect(existsSync(join(work, `${m.id}_top_f32_all_origin_weight.npz`))).toBe(true);
      const inF32 = await readNpz(join(work, `${m.id}_in_f32.npz`));
      expect([...inF32.values()][0]!.shape).toEqual(JSON.parse(m.shapes)[0]);
      const cache = join(work, "cache");
      for (const method of METHODS) {
        const out = join(work, `${m.id}_cali_table_${method}`);
        // tuning (TPU-MLIR's default) on the small models' KL run; the rest untuned to keep the suite quick
        const tune = method === "use_kl" && ["resnet20", "fastestdet", "blazeface"].includes(m.id) ? [] : ["--tune_num", "0"];
        const r = await q("run_calibration", mlir, "--data_list", list, "--cali_method", method, "--cache", cache, ...tune, "-o", out);
        expect(r.code, `${method}: ${r.err}`).toBe(0);
        const table = await readCaliTable(out);
        expect(table.entries.length).toBeGreaterThan(5);
        expect(table.header.tuneNumber).toBe(tune.length ? undefined : 5);
        for (const e of table.entries) {
          expect(e.threshold, `${method} ${e.name}`).toBeGreaterThan(0);
          expect(e.threshold, `${method} ${e.name}`).toBeLessThanOrEqual(Math.max(Math.abs(e.min), Math.abs(e.max), 1e-5) * (1 + 1e-6) + 1e-7);
        }
      }
    });
  }
});

describe.skipIf(!HAVE_SHARED)("run_calibration bad input: one line, exit 2, no table written", () => {
  let mlir: string;
  beforeAll(async () => {
    mlir = join(dir, "bad", "resnet20.mlir");
    mkdirSync(join(dir, "bad"), { recursive: true });
    const r = await q("model_transform", "--model_name", "resnet20", "--model_def", S("torch/resnet20_cifar10/resnet20_cifar10.onnx"), "--input_shapes", "[[1,3,32,32]]", "--mlir", mlir);
    expect(r.code, r.err).toBe(0);
  });
  const fails = async (re: RegExp, out: string, ...args: string[]) => {
    const r = await q("run_calibration", mlir, ...args, "-o", out);
    expect(r.code, r.out).toBe(2);
    expect(r.err.trim().split("\n").filter((l) => l.startsWith("error:"))).toHaveLength(1);
    expect(r.err).toMatch(re);
    expect(existsSync(out)).toBe(false);
  };
  it("an unreadable image", async () => {
    const d = join(dir, "broken-images");
    mkdirSync(d, { recursive: true });
    copyFileSync(S("cifar10-test/airplane/0000.jpg"), join(d, "a.jpg"));
    writeFileSync(join(d, "b.jpg"), Buffer.from("not a jpeg at all"));
    await fails(/b\.jpg/, join(dir, "t1"), "--dataset", d);
  });
  it("a dataset smaller than --input_num", async () => {
    await fails(/input_num|samples/, join(dir, "t2"), "--data_list", imageList(S("cifar10-test"), 3, "three.txt"), "--input_num", "10");
  });
  it("an unknown --cali_method", async () => {
    await fails(/use_kl/, join(dir, "t3"), "--data_list", imageList(S("cifar10-test"), 3, "three.txt"), "--cali_method", "use_magic");
  });
  it("a sample whose shape does not fit the model", async () => {
    const d = join(dir, "wrong-shape");
    mkdirSync(d, { recursive: true });
    const { writeNpy, Tensor } = await import("@q/ir");
    await writeNpy(join(d, "x.npy"), Tensor.f32([1, 3, 28, 28]));
    await fails(/x\.npy.*shape|shape.*x\.npy/, join(dir, "t4"), "--dataset", d);
  });
  it("a malformed cali_table line is refused by the reader, naming the line", async () => {
    const f = join(dir, "bad_table");
    writeFileSync(f, "# op_name threshold min max\ninput 1.0 -1.0\n");
    await expect(readCaliTable(f)).rejects.toThrow(/bad_table:2/);
  });
});

describe.skipIf(HAVE_SHARED)("model_transform + run_calibration", () => {
  it.skip(SKIP_SHARED_MSG, () => {});
});

describe.skipIf(!HAVE_SHARED)("run_calibration --we / --sq rewrite the .mlir without changing what it computes", () => {
  const cases = [
    { id: "cls-we", flag: "--we", def: S("paddleocr-onnx/ch_ppocr_mobile_v2.0_cls_infer.onnx"), shapes: "[[1,3,48,192]]" },
    { id: "rec-sq", flag: "--sq", def: S("transformer/ppocrv4-rec-svtr/ch_PP-OCRv4_rec_infer.onnx"), shapes: "[[1,3,48,320]]" },
  ];
  for (const c of cases) {
    it(`${c.id}`, async () => {
      const { readTopMlir } = await import("@q/backend-sophgo");
      const { OrtExecutor } = await import("@q/ort");
      const { cosine } = await import("../../../tools/testing/shared-models.js");
      const { Tensor } = await import("@q/ir");
      const work = join(dir, c.id);
      mkdirSync(work, { recursive: true });
      const mlir = join(work, "m.mlir");
      const t = await q("model_transform", "--model_name", c.id, "--model_def", c.def, "--input_shapes", c.shapes, "--mlir", mlir);
      expect(t.code, t.err).toBe(0);
      const before = await readTopMlir(mlir);
      const shape = JSON.parse(c.shapes)[0] as number[];
      const x = Tensor.f32(shape, Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => Math.sin(i * 0.37)));
      const run = async (g: typeof before) => { const ex = await OrtExecutor.create(g); const r = await ex.run({ [g.inputs[0]!.name]: x }); await ex.dispose(); return r[g.outputs[0]!.name]!.toFloat32(); };
      const y0 = await run(before);
      const r = await q("run_calibration", mlir, "--data_list", imageList(S("paddleocr-onnx/images"), 4, `${c.id}.txt`), c.flag, "-o", join(work, "table"));
      expect(r.code, r.err).toBe(0);
      expect(r.err).toMatch(c.flag === "--we" ? /conv pairs equalized/ : /LayerNorms smoothed/);
      const after = await readTopMlir(mlir);
      expect(cosine(await run(after), y0)).toBeGreaterThan(0.9999);
      expect(existsSync(join(work, "table"))).toBe(true);
    });
  }
});

describe.skipIf(!HAVE_SHARED)("run_calibration threshold tuning", () => {
  it("raises KL thresholds only upward and records the tune number", async () => {
    const work = join(dir, "tune");
    mkdirSync(work, { recursive: true });
    const mlir = join(work, "r.mlir");
    expect((await q("model_transform", "--model_name", "r", "--model_def", S("torch/resnet20_cifar10/resnet20_cifar10.onnx"), "--input_shapes", "[[1,3,32,32]]",
      "--mean", "123.675,116.28,103.53", "--scale", "0.0171248,0.0175070,0.0174292", "--pixel_format", "rgb", "--mlir", mlir)).code).toBe(0);
    const list = imageList(S("cifar10-test"), 20, "tune20.txt");
    const plain = await q("run_calibration", mlir, "--data_list", list, "--tune_num", "0", "-o", join(work, "untuned"));
    const tuned = await q("run_calibration", mlir, "--data_list", list, "-o", join(work, "tuned"));
    expect(plain.code, plain.err).toBe(0);
    expect(tuned.code, tuned.err).toBe(0);
    expect(tuned.err).toMatch(/tuning: \d+ thresholds raised/);
    const a = await readCaliTable(join(work, "untuned")), b = await readCaliTable(join(work, "tuned"));
    expect(b.header.tuneNumber).toBe(5);
    let raised = 0;
    a.entries.forEach((e, i) => {
      expect(b.entries[i]!.name).toBe(e.name);
      expect(b.entries[i]!.threshold).toBeGreaterThanOrEqual(e.threshold);
      if (b.entries[i]!.threshold > e.threshold) raised++;
    });
    expect(raised).toBeGreaterThan(0);
  });
});
