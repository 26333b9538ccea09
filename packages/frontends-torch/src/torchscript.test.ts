import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { ModelFormatError, ReferenceExecutor, Tensor, UnknownOpError, readNpy, type Feeds, type Graph } from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { parseTorchBytes, parseTorchScriptSource, readTorch, readTorchScript, torchScriptToGraph, type ReadTorchScriptOptions } from "./index.js";
import { scriptArchive } from "./testing/fixtures.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG, cosine, relMaxDiff } from "../../../tools/testing/shared-models.js";

const R20 = join(SHARED, "torch/resnet20_cifar10");

function graphOf(body: string, params: Record<string, Tensor> = {}, inputShapes?: Record<string, number[]>, args?: string[]): Graph {
  const ar = parseTorchBytes(scriptArchive(body, params, args ? { args } : {}), "test.pt");
  return torchScriptToGraph(ar, inputShapes ? { inputShapes } : {});
}

/** Run on both executors; check they agree and return the reference result. */
async function runBoth(g: Graph, feeds: Feeds, out = "output"): Promise<Tensor> {
  const ref = (await new ReferenceExecutor(g).run(feeds))[out]!;
  const ort = await OrtExecutor.create(g);
  const o = (await ort.run(feeds))[out]!;
  await ort.dispose();
  expect(o.shape).toEqual(ref.shape);
  const a = ref.toFloat32();
  const b = o.toFloat32();
  for (let i = 0; i < a.length; i++) expect(b[i]!).toBeCloseTo(a[i]!, 4);
  return ref;
}

const seq = (shape: number[], f = (i: number) => i) => Tensor.f32(shape, Array.from({ length: shape.reduce((p, q) => p * q, 1) }, (_, i) => f(i)));

describe("TorchScript code parser", () => {
  it("parses classes, annotations, multi-line signatures and straight-line bodies", () => {
    const src = [
      "class Net(Module):",
      "  __parameters__ = [\"weight\", ]",
      "  __buffers__ = []",
      "  weight : Tensor",
      "  training : bool",
      "  __annotations__[\"0\"] = __torch__.torch.nn.modules.conv.Conv2d",
      "  def forward(self: __torch__.Net,",
      "    x: Tensor,",
      "    y: Optional[Tensor]=None) -> Tuple[Tensor, Tensor]:",
      "    _0 = getattr(self, \"0\")",
      "    a, b = (torch.relu(x), torch.add(x, 1., alpha=2))  # comment",
      "    c = [1, -2, 3.5e-05, 9223372036854775807]",
      "    if torch.gt(a, 0):",
      "      a = torch.relu(a)",
      "    else:",
      "      pass",
      "    return (a, b)",
      "class Other(Module):",
      "  def forward(self: __torch__.Other) -> None:",
      "    return None",
    ].join("\n");
    const classes = parseTorchScriptSource(src, "__torch__", "x.py");
    expect(classes.map((c) => c.qualname)).toEqual(["__torch__.Net", "__torch__.Other"]);
    const net = classes[0]!;
    expect(net.parameters).toEqual(["weight"]);
    const fwd = net.methods.get("forward")!;
    expect(fwd.params).toEqual(["self", "x", "y"]);
    expect(fwd.body.map((s) => s.k)).toEqual(["assign", "assign", "assign", "unsupported", "return"]);
    const s1 = fwd.body[1]!;
    expect(s1.k === "assign" && s1.targets).toEqual(["a", "b"]);
  });
});

describe("TorchScript ops into IR (hand-made archives, both executors)", () => {
  it("constant_pad_nd / pad: torch pad order (last dim first) into ONNX begins/ends", async () => {
    const g = graphOf("    return torch.constant_pad_nd(x, [1, 0, 0, 1], 0.)", {}, { x: [1, 1, 2, 2] });
    const y = await runBoth(g, { x: seq([1, 1, 2, 2], (i) => i + 1) });
    expect(y.shape).toEqual([1, 1, 3, 3]);
    expect(y.toArray()).toEqual([0, 1, 2, 0, 3, 4, 0, 0, 0]);
    const g2 = graphOf("    return torch.pad(x, [0, 0, 0, 0, 1, 1], \"constant\", 0.)", {}, { x: [1, 1, 1, 2] });
    const y2 = await runBoth(g2, { x: seq([1, 1, 1, 2], (i) => i + 1) });
    expect(y2.shape).toEqual([1, 3, 1, 2]);
    expect(y2.toArray()).toEqual([0, 0, 1, 2, 0, 0]);
  });

  it("slice with steps and INT64_MAX ends; identity slices vanish", async () => {
    const body = [
      "    _0 = torch.slice(x, 0, 0, 9223372036854775807)",
      "    _1 = torch.slice(_0, 3, 1, 9223372036854775807, 2)",
      "    return _1",
    ].join("\n");
    const g = graphOf(body, {}, { x: [1, 1, 1, 6] });
    expect(g.nodes.map((n) => n.opType)).toEqual(["Slice"]);
    const y = await runBoth(g, { x: seq([1, 1, 1, 6]) });
    expect(y.toArray()).toEqual([1, 3, 5]);
  });

  it("upsample_nearest2d with scale factors, cat, permute, softmax", async () => {
    const body = [
      "    _0 = torch.upsample_nearest2d(x, None, [2., 2.])",
      "    _1 = torch.cat([_0, _0], 1)",
      "    _2 = torch.permute(_1, [0, 2, 3, 1])",
      "    return torch.softmax(_2, -1)",
    ].join("\n");
    const g = graphOf(body, {}, { x: [1, 1, 1, 2] });
    const y = await runBoth(g, { x: seq([1, 1, 1, 2], (i) => i + 1) });
    expect(y.shape).toEqual([1, 2, 4, 2]);
    expect(y.toArray().every((v) => Math.abs(v - 0.5) < 1e-6)).toBe(true);
    const up = graphOf("    return torch.upsample_nearest2d(x, None, [2., 2.])", {}, { x: [1, 1, 1, 2] });
    expect((await runBoth(up, { x: seq([1, 1, 1, 2], (i) => i + 1) })).toArray()).toEqual([1, 1, 2, 2, 1, 1, 2, 2]);
  });

  it("conv + size/NumToTensor/int shape logic keeps the batch dynamic without inputShapes", async () => {
    const w = seq([2, 1, 3, 3], (i) => ((i % 5) - 2) / 4);
    const b = Tensor.f32([2], [0.5, -0.5]);
    const body = [
      "    b = self.b",
      "    w = self.w",
      "    _0 = torch.conv2d(x, w, b, [1, 1], [1, 1], [1, 1], 1)",
      "    _1 = ops.prim.NumToTensor(torch.size(_0, 0))",
      "    _2 = torch.view(_0, [int(_1), -1])",
      "    return torch.relu(_2)",
    ].join("\n");
    const g = graphOf(body, { w, b });
    expect(g.inputs[0]!.shape).toEqual(["N", 1, "x_H", "x_W"]);
    for (const n of [1, 3]) {
      const y = await runBoth(g, { x: seq([n, 1, 4, 4], (i) => Math.sin(i)) });
      expect(y.shape).toEqual([n, 32]);
    }
    // with concrete shapes the batch becomes a number
    const g2 = graphOf(body, { w, b }, { x: [2, 1, 4, 4] });
    expect(g2.outputs[0]!.shape).toEqual([2, 32]);
  });

  it("linear on rank 3 (MatMul with a folded transposed weight), addmm + t, matmul", async () => {
    const w = seq([3, 4], (i) => i / 10);
    const bias = Tensor.f32([3], [1, 2, 3]);
    const g = graphOf("    w = self.w\n    b = self.b\n    return torch.linear(x, w, b)", { w, b: bias }, { x: [2, 2, 4] });
    expect(g.nodes.map((n) => n.opType)).toEqual(["MatMul", "Add"]);
    const x = seq([2, 2, 4], (i) => i % 3);
    const y = await runBoth(g, { x });
    // y[0,0,j] = sum_k x[k] w[j,k] + b[j], x[0,0] = [0,1,2,0]
    const xs = [0, 1, 2, 0];
    expect(y.toArray()[1]!).toBeCloseTo(xs.reduce((s, v, k) => s + v * w.toArray()[4 + k]!, 0) + 2, 5);
    const g2 = graphOf("    w = self.w\n    b = self.b\n    return torch.addmm(b, x, torch.t(w), beta=1, alpha=1)", { w, b: bias }, { x: [2, 4] });
    expect(g2.nodes.map((n) => n.opType)).toEqual(["Gemm"]);
    const y2 = await runBoth(g2, { x: seq([2, 4], (i) => i % 3) });
    expect(y2.toArray()[1]!).toBeCloseTo(xs.reduce((s, v, k) => s + v * w.toArray()[4 + k]!, 0) + 2, 5);
    const g3 = graphOf("    return torch.matmul(x, torch.transpose(x, 1, 2))", {}, { x: [1, 2, 3] });
    expect((await runBoth(g3, { x: seq([1, 2, 3]) })).toArray()).toEqual([5, 14, 14, 50]);
  });

  it("activations and norms match their formulas: hardswish, hardsigmoid, silu, gelu, hardtanh, layer_norm, batch_norm", async () => {
    const xs = [-4, -1.5, -0.2, 0, 0.3, 1, 2.5, 5];
    const x = Tensor.f32([1, 8], xs);
    const check = async (body: string, f: (v: number) => number, params: Record<string, Tensor> = {}) => {
      const y = (await runBoth(graphOf(body, params, { x: [1, 8] }), { x })).toArray();
      xs.forEach((v, i) => expect(y[i]!).toBeCloseTo(f(v), 5));
    };
    const erf = (z: number) => {
      // Abramowitz-Stegun 7.1.26 is too coarse; integrate instead
      let s = 0;
      const n = 2000;
      for (let i = 0; i < n; i++) {
        const t = (z * (i + 0.5)) / n;
        s += Math.exp(-t * t);
      }
      return ((2 / Math.sqrt(Math.PI)) * s * z) / n;
    };
    await check("    return torch.hardswish(x)", (v) => (v * Math.min(Math.max(v + 3, 0), 6)) / 6);
    await check("    return torch.hardsigmoid(x)", (v) => Math.min(Math.max(v / 6 + 0.5, 0), 1));
    await check("    return torch.silu(x)", (v) => v / (1 + Math.exp(-v)));
    await check("    return torch.gelu(x)", (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)));
    await check("    return torch.gelu(x, approximate=\"tanh\")", (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    await check("    return torch.hardtanh(x, 0., 6.)", (v) => Math.min(Math.max(v, 0), 6));
    await check("    return torch.sigmoid(torch.mul(x, 2))", (v) => 1 / (1 + Math.exp(-2 * v)));
    await check("    return torch.add(x, x, alpha=2)", (v) => 3 * v);
    await check("    return torch.rsub(x, 1)", (v) => 1 - v);
    const mean = xs.reduce((a, b) => a + b, 0) / 8;
    const vr = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / 8;
    const lw = Tensor.f32([8], xs.map((_, i) => 1 + i / 8));
    const lb = Tensor.f32([8], xs.map((_, i) => i / 10));
    const y = (await runBoth(graphOf("    w = self.w\n    b = self.b\n    return torch.layer_norm(x, [8], w, b, 1.0000000000000001e-05, True)", { w: lw, b: lb }, { x: [1, 8] }), { x })).toArray();
    xs.forEach((v, i) => expect(y[i]!).toBeCloseTo(((v - mean) / Math.sqrt(vr + 1e-5)) * (1 + i / 8) + i / 10, 4));
    const bn = graphOf(
      "    m = self.m\n    v = self.v\n    return torch.batch_norm(x, None, None, m, v, False, 0.1, 0.001, True)",
      { m: Tensor.f32([2], [1, -1]), v: Tensor.f32([2], [4, 0.25]) }, { x: [1, 2, 1, 2] },
    );
    const yb = (await runBoth(bn, { x: Tensor.f32([1, 2, 1, 2], [3, 5, 0, -2]) })).toArray();
    [2 / Math.sqrt(4.001), 4 / Math.sqrt(4.001), 1 / Math.sqrt(0.251), -1 / Math.sqrt(0.251)].forEach((e, i) => expect(yb[i]!).toBeCloseTo(e, 5));
  });

  it("pools and flatten: max_pool2d, avg_pool2d, adaptive_avg_pool2d, flatten", async () => {
    const body = [
      "    _0 = torch.max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], False)",
      "    _1 = torch.avg_pool2d(x, [2, 2], [2, 2], [0, 0], False, True, None)",
      "    _2 = torch.add(_0, _1)",
      "    _3 = torch.adaptive_avg_pool2d(_2, [1, 1])",
      "    return torch.flatten(_3, 1)",
    ].join("\n");
    const g = graphOf(body, {}, { x: [1, 1, 4, 4] });
    const y = await runBoth(g, { x: seq([1, 1, 4, 4]) });
    // max of each 2x2 block: 5 7 13 15 (mean 10); avg: 2.5 4.5 10.5 12.5 (mean 7.5)
    expect(y.shape).toEqual([1, 1]);
    expect(y.toArray()[0]).toBeCloseTo(17.5, 5);
  });

  it("refuses scripted control flow and unknown ops with typed errors", () => {
    const ctl = "    if bool(torch.gt(torch.sum(x), 0)):\n      x = torch.relu(x)\n    else:\n      pass\n    return x";
    expect(() => graphOf(ctl, {}, { x: [1] })).toThrow(ModelFormatError);
    expect(() => graphOf(ctl, {}, { x: [1] })).toThrow(/'if' is not supported \(scripted control flow\)/);
    let err: unknown;
    try {
      graphOf("    return torch.lstm_cell(x, x)", {}, { x: [1] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnknownOpError);
    expect((err as UnknownOpError).opType).toBe("aten::lstm_cell");
    expect((err as Error).message).toMatch(/test\.pt.*aten::lstm_cell/);
    expect(() => graphOf("    return torch.relu(x)", {}, { y: [1] })).toThrow(/inputShapes names 'y'/);
  });
});

describe.skipIf(!HAVE_SHARED)("real traced ResNet-20 (TorchScript)", () => {
  if (!HAVE_SHARED) it.skip(SKIP_SHARED_MSG, () => {});

  const cases: [string, ReadTorchScriptOptions][] = [["symbolic input shape", {}], ["inputShapes 10x3x32x32", { inputShapes: { x: [10, 3, 32, 32] } }]];
  for (const [label, opts] of cases) {
    it(`reproduces ref/output_logits.npy on both executors (${label})`, async () => {
      const g = await readTorchScript(join(R20, "resnet20_cifar10_traced.pt"), opts);
      expect(g.opsets).toEqual({ "": 17 });
      const ops = new Map<string, number>();
      for (const n of g.nodes) ops.set(n.opType, (ops.get(n.opType) ?? 0) + 1);
      expect(ops.get("Conv")).toBe(19);
      expect(ops.get("BatchNormalization")).toBe(19);
      expect(ops.get("Pad")).toBe(2);
      expect(ops.get("Slice")).toBe(4); // x[:, :, ::2, ::2] of the two option-A shortcuts
      expect(ops.get("Gemm")).toBe(1);
      expect(g.initializers.has("layer2.0.conv1.weight")).toBe(true);
      const x = await readNpy(join(R20, "ref/input.npy"));
      const ref = (await readNpy(join(R20, "ref/output_logits.npy"))).toFloat32();
      const refOut = (await new ReferenceExecutor(g).run({ x })).output!.toFloat32();
      const ort = await OrtExecutor.create(g);
      const ortOut = (await ort.run({ x })).output!.toFloat32();
      await ort.dispose();
      for (const y of [refOut, ortOut]) {
        expect(y.length).toBe(100);
        expect(cosine(y, ref)).toBeGreaterThanOrEqual(0.9999);
        expect(relMaxDiff(y, ref)).toBeLessThanOrEqual(1e-3);
      }
    });
  }

  it("readTorch detects the TorchScript archive", async () => {
    const g = await readTorch(join(R20, "resnet20_cifar10_traced.pt"));
    expect(g.outputs.map((o) => o.name)).toEqual(["output"]);
    expect(g.inputs.map((i) => i.name)).toEqual(["x"]);
  });
});
