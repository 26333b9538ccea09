import { describe, expect, it } from "vitest";
import { Graph, Node, ReferenceExecutor, Tensor, batchable, readNpy, runSamples, split0 } from "@q/ir";
import { readOnnx } from "@q/frontends-onnx";
import { OrtExecutor, fuseZeroPadIntoAveragePool, intermediateNames } from "./index.js";
import { HAVE_SHARED, ONNX_MODELS, SKIP_SHARED_MSG, cosine, feedsFor, relMaxDiff } from "../../../tools/testing/shared-models.js";

function tinyGraph(): Graph {
  const g = new Graph({ opsets: { "": 17 } });
  g.inputs = [{ name: "x", dtype: "float32", shape: ["N", 4] }];
  g.outputs = [{ name: "y", dtype: "float32", shape: ["N", 4] }];
  g.initializers.set("w", Tensor.f32([4], [1, -2, 3, -4]));
  g.nodes = [
    new Node({ opType: "Mul", inputs: ["x", "w"], outputs: ["m"] }),
    new Node({ opType: "Relu", inputs: ["m"], outputs: ["r"] }),
    new Node({ opType: "Add", inputs: ["r", "x"], outputs: ["y"] }),
  ];
  return g;
}

describe("OrtExecutor", () => {
  it("runs a graph built in IR and matches hand-computed values", async () => {
    const ex = await OrtExecutor.create(tinyGraph());
    const r = await ex.run({ x: Tensor.f32([2, 4], [1, 1, 1, 1, -1, 2, -3, 4]) });
    // y = relu(x*w) + x
    expect(Array.from(r.y!.data as Float32Array)).toEqual([2, 1, 4, 1, -1, 2, -3, 4]);
    await ex.dispose();
  });

  it("returns intermediates from the same session, and only what is asked", async () => {
    const ex = await OrtExecutor.create(tinyGraph(), { expose: "all" });
    const x = Tensor.f32([1, 4], [1, 2, 3, 4]);
    const all = await ex.run({ x }, { all: true });
    expect(Object.keys(all).sort()).toEqual(["m", "r", "y"]);
    expect(Array.from(all.m!.data as Float32Array)).toEqual([1, -4, 9, -16]);
    const some = await ex.run({ x }, { outputs: ["r"] });
    expect(Object.keys(some)).toEqual(["r"]);
    expect(Array.from(some.r!.data as Float32Array)).toEqual([1, 0, 9, 0]);
    // names asked out of session order still get their own values
    const two = await ex.run({ x }, { outputs: ["r", "m"] });
    expect(Array.from(two.r!.data as Float32Array)).toEqual([1, 0, 9, 0]);
    expect(Array.from(two.m!.data as Float32Array)).toEqual([1, -4, 9, -16]);
    await ex.dispose();
  });

  it("refuses a value it was not built to expose, naming it", async () => {
    const ex = await OrtExecutor.create(tinyGraph());
    await expect(ex.run({ x: Tensor.f32([1, 4]) }, { outputs: ["m"] })).rejects.toThrow(/'m'/);
    await expect(OrtExecutor.create(tinyGraph(), { expose: ["nope"] })).rejects.toThrow(/nope/);
    await ex.dispose();
  });

  it("reports a missing input by name", async () => {
    const ex = await OrtExecutor.create(tinyGraph());
    await expect(ex.run({})).rejects.toThrow(/missing input 'x'/);
    await ex.dispose();
  });
});

describe.skipIf(!HAVE_SHARED)("OrtExecutor on the shared models", () => {
  for (const c of ONNX_MODELS.filter((m) => m.refs)) {
    it(`${c.id}: outputs match the reference outputs shipped with the model`, async () => {
      const g = await readOnnx(c.path);
      const ex = await OrtExecutor.create(g);
      const res = await ex.run(await feedsFor(c, g));
      for (const [name, file] of Object.entries(c.refs!)) {
        const ref = await readNpy(file);
        const got = res[name]!;
        expect(got.size).toBe(ref.size);
        expect(cosine(got.toFloat32(), ref.toFloat32()), name).toBeGreaterThan(0.99999);
        expect(relMaxDiff(got.toFloat32(), ref.toFloat32()), name).toBeLessThan(1e-3);
      }
      await ex.dispose();
    });
  }

  it("resnet20: a batch of 10 gives the same logits as 10 single runs", async () => {
    const c = ONNX_MODELS.find((m) => m.id === "resnet20")!;
    const g = await readOnnx(c.path);
    const feeds = await feedsFor(c, g);
    const ex = await OrtExecutor.create(g);
    const batched = (await ex.run(feeds)).logits!;
    expect(batched.shape).toEqual([10, 10]);
    const singles = split0(feeds.input!, Array(10).fill(1));
    const parts = split0(batched, Array(10).fill(1));
    for (let i = 0; i < 10; i++) {
      const one = (await ex.run({ input: singles[i]! })).logits!;
      expect(relMaxDiff(one.toFloat32(), parts[i]!.toFloat32())).toBeLessThan(1e-5);
    }
    await ex.dispose();
  });

  for (const id of ["fastestdet", "ppocr-cls", "resnet20"]) {
    it(`${id}: intermediates returned alongside outputs equal those of the extracted subgraph`, async () => {
      const c = ONNX_MODELS.find((m) => m.id === id)!;
      const g = await readOnnx(c.path);
      const feeds = await feedsFor(c, g);
      const ex = await OrtExecutor.create(g, { expose: "all" });
      const all = await ex.run(feeds, { all: true });
      const names = intermediateNames(g);
      expect(Object.keys(all).length).toBe(new Set([...names, ...g.outputs.map((o) => o.name)]).size);
      // pick a value in the middle of the network and compute it on its own
      const conv = g.nodes.filter((n) => n.opType === "Conv");
      const mid = conv[Math.floor(conv.length / 2)]!.outputs[0]!;
      const sub = g.extract(g.inputs.map((i) => i.name), [mid]);
      const ex2 = await OrtExecutor.create(sub);
      const alone = (await ex2.run(feeds))[mid]!;
      expect(relMaxDiff(all[mid]!.toFloat32(), alone.toFloat32())).toBeLessThan(1e-5);
      await ex.dispose();
      await ex2.dispose();
    });
  }
});

describe.skipIf(!HAVE_SHARED)("executor agreement: ONNX Runtime vs the reference interpreter", () => {
  for (const c of ONNX_MODELS.filter((m) => m.real)) {
    it(`${c.id}: cosine >= 0.99999 on every output`, async () => {
      const g = await readOnnx(c.path);
      const feeds = await feedsFor(c, g);
      const ort = await OrtExecutor.create(g);
      const a = await ort.run(feeds);
      const b = await new ReferenceExecutor(g).run(feeds);
      for (const o of g.outputs) {
        const x = a[o.name]!, y = b[o.name]!;
        expect(y.shape, o.name).toEqual(x.shape);
        expect(cosine(y.toFloat32(), x.toFloat32()), o.name).toBeGreaterThanOrEqual(0.99999);
      }
      await ort.dispose();
    });
  }
});

describe.skipIf(HAVE_SHARED)("OrtExecutor on the shared models", () => {
  it.skip(SKIP_SHARED_MSG, () => {});
});

describe.skipIf(!HAVE_SHARED)("OrtExecutor reuseOutputs", () => {
  it("fastestdet: runs into kept buffers give the same values as fresh runs, for changing inputs", async () => {
    const c = ONNX_MODELS.find((m) => m.id === "fastestdet")!;
    const g = await readOnnx(c.path);
    const feeds = await feedsFor(c, g);
    const other = { "input.1": Tensor.f32(feeds["input.1"]!.shape, feeds["input.1"]!.toFloat32().map((v) => 1 - v)) };
    const fresh = await OrtExecutor.create(g, { expose: "all" });
    const reuse = await OrtExecutor.create(g, { expose: "all", reuseOutputs: true });
    for (const f of [feeds, other, feeds, other]) {
      const a = await fresh.run(f, { all: true });
      const b = await reuse.run(f, { all: true });
      expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
      for (const k of Object.keys(a)) expect(relMaxDiff(b[k]!.toFloat32(), a[k]!.toFloat32()), k).toBe(0);
    }
    await fresh.dispose();
    await reuse.dispose();
  });
});

describe("ORT workarounds", () => {
  it("moves a zero Pad into the AveragePool that follows it, keeping the values", async () => {
    const g = new Graph({ opsets: { "": 13 } });
    g.inputs = [{ name: "x", dtype: "float32", shape: [1, 1, 3, 3] }];
    g.outputs = [{ name: "y", dtype: "float32" }];
    g.initializers.set("pads", Tensor.i64([8], [0, 0, 1, 1, 0, 0, 1, 1]));
    g.nodes = [
      new Node({ opType: "Pad", inputs: ["x", "pads"], outputs: ["p"] }),
      new Node({ opType: "AveragePool", inputs: ["p"], outputs: ["y"], attrs: { kernel_shape: { type: "ints", value: [3, 3] } } }),
    ];
    const x = Tensor.f32([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // hand-worked: corner window covers 1,2,4,5 and five zeros -> 12/9; centre -> 45/9
    const expected = [12 / 9, 21 / 9, 16 / 9, 27 / 9, 45 / 9, 33 / 9, 24 / 9, 39 / 9, 28 / 9];
    const ref = (await new ReferenceExecutor(g).run({ x })).y!;
    const ex = await OrtExecutor.create(g);
    const got = (await ex.run({ x })).y!;
    for (let i = 0; i < 9; i++) {
      expect(ref.toFloat32()[i]).toBeCloseTo(expected[i]!, 5);
      expect(got.toFloat32()[i]).toBeCloseTo(expected[i]!, 5);
    }
    await ex.dispose();
    const h = g.clone();
    expect(fuseZeroPadIntoAveragePool(h)).toBe(1);
    expect(h.nodes.map((n) => n.opType)).toEqual(["AveragePool"]);
    expect(h.nodes[0]!.ints("pads")).toEqual([1, 1, 1, 1]);
    expect(h.nodes[0]!.int("count_include_pad")).toBe(1);
  });
});

describe.skipIf(!HAVE_SHARED)("runSamples", () => {
  it("stacks samples for a free batch dim and loops for a fixed one, with the same results", async () => {
    for (const id of ["resnet20", "fastestdet"]) {
      const c = ONNX_MODELS.find((m) => m.id === id)!;
      const g = await readOnnx(c.path);
      const feeds = await feedsFor(c, g);
      const name = g.inputs[0]!.name;
      const x = feeds[name]!;
      const one = x.shape[0] === 1 ? x : split0(x, Array(x.shape[0]).fill(1))[0]!;
      const samples = [0, 1, 2].map((k) => ({ [name]: Tensor.f32(one.shape, one.toFloat32().map((v) => v * (1 - 0.2 * k))) }));
      expect(batchable(g)).toBe(id === "resnet20");
      const ex = await OrtExecutor.create(g);
      const many = await runSamples(ex, samples, { maxBatch: 2 });
      expect(many).toHaveLength(3);
      for (let k = 0; k < 3; k++) {
        const single = await ex.run(samples[k]!);
        for (const o of g.outputs) expect(relMaxDiff(many[k]![o.name]!.toFloat32(), single[o.name]!.toFloat32()), `${id} ${k}`).toBeLessThan(1e-5);
      }
      await ex.dispose();
    }
  });
});
