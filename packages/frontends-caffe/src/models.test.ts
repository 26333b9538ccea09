/**
 * The Caffe test models from ../shared/test-models, read into IR and run on both executors
 * against the OpenCV DNN reference outputs shipped with them.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { readNpy, type Tensor } from "@q/ir";
import { readCaffe, decodeCaffe } from "./index.js";
import { encodeCaffemodel, maxAbs, runBoth } from "./test-util.js";
import { decodeCaffemodel } from "./weights.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG, cosine, relMaxDiff } from "../../../tools/testing/shared-models.js";

const LENET = `${SHARED}/caffe/lenet-mnist`;
const RETINA = `${SHARED}/caffe/retinaface`;

if (!HAVE_SHARED) console.warn(SKIP_SHARED_MSG);

function check(got: Tensor, ref: Tensor, what: string): { cos: number; rel: number; abs: number } {
  expect(got.shape, what).toEqual(ref.shape);
  const a = got.toFloat32(), b = ref.toFloat32();
  const r = { cos: cosine(a, b), rel: relMaxDiff(a, b), abs: maxAbs(a, b) };
  expect(r.cos, `${what}: cosine`).toBeGreaterThanOrEqual(0.9999);
  expect(r.rel, `${what}: max abs error / output range`).toBeLessThanOrEqual(1e-3);
  return r;
}

describe.skipIf(!HAVE_SHARED)("Caffe test models vs OpenCV DNN references", () => {
  it("lenet-mnist: 10 digits through both executors", async () => {
    const g = await readCaffe(`${LENET}/mnist_deploy.prototxt`, `${LENET}/lenet_iter_10000.caffemodel`, { inputShapes: { data: [10, 1, 28, 28] } });
    expect(g.opsets).toEqual({ "": 17 });
    expect(g.inputs.map((i) => [i.name, i.shape])).toEqual([["data", [10, 1, 28, 28]]]);
    expect(g.outputs.map((o) => o.name)).toEqual(["loss"]);
    const x = await readNpy(`${LENET}/ref/input.npy`);
    const ref = await readNpy(`${LENET}/ref/output_loss.npy`);
    const { ref: a, ort: b } = await runBoth(g, { data: x });
    const ra = check(a.loss!, ref, "reference executor: loss");
    const rb = check(b.loss!, ref, "ort: loss");
    console.log(`lenet loss: reference cos=${ra.cos} maxabs=${ra.abs.toExponential(2)} | ort cos=${rb.cos} maxabs=${rb.abs.toExponential(2)}`);
  });

  it("lenet-mnist: the prototxt's own batch of 1 runs sample by sample", async () => {
    const g = await readCaffe(`${LENET}/mnist_deploy.prototxt`, `${LENET}/lenet_iter_10000.caffemodel`);
    expect(g.inputs[0]!.shape).toEqual([1, 1, 28, 28]);
    const x = await readNpy(`${LENET}/ref/input.npy`);
    const ref = await readNpy(`${LENET}/ref/output_loss.npy`);
    const one = x.reshape(x.shape).toFloat32().slice(3 * 784, 4 * 784);
    const { Tensor } = await import("@q/ir");
    const { ref: a, ort: b } = await runBoth(g, { data: new Tensor("float32", [1, 1, 28, 28], one) });
    const want = ref.toFloat32().slice(30, 40);
    expect(maxAbs(a.loss!.toFloat32(), want)).toBeLessThan(1e-5);
    expect(maxAbs(b.loss!.toFloat32(), want)).toBeLessThan(1e-5);
  });

  it("retinaface: 9 outputs through both executors", async () => {
    const g = await readCaffe(`${RETINA}/retinaface.prototxt`, `${RETINA}/retinaface.caffemodel`);
    expect(g.outputs.length).toBe(9);
    // SSA: every value is written once
    const written = g.nodes.flatMap((n) => n.outputs);
    expect(new Set(written).size).toBe(written.length);
    const x = await readNpy(`${RETINA}/ref/input.npy`);
    const { ref: a, ort: b } = await runBoth(g, { data: x });
    for (const o of g.outputs) {
      const ref = await readNpy(`${RETINA}/ref/output_${o.name}.npy`);
      const ra = check(a[o.name]!, ref, `reference executor: ${o.name}`);
      const rb = check(b[o.name]!, ref, `ort: ${o.name}`);
      console.log(`retinaface ${o.name}: reference cos=${ra.cos.toFixed(9)} maxabs=${ra.abs.toExponential(2)} rel=${ra.rel.toExponential(2)} | ort cos=${rb.cos.toFixed(9)} maxabs=${rb.abs.toExponential(2)} rel=${rb.rel.toExponential(2)}`);
    }
  });

  it("lenet-mnist written as a V1 net (layers { type: CONVOLUTION }) with a V1 caffemodel gives the same outputs", async () => {
    const v1 = `
name: "LeNet-v1"
input: "data"
input_dim: 10 input_dim: 1 input_dim: 28 input_dim: 28
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" blobs_lr: 1 blobs_lr: 2
  convolution_param { num_output: 20 kernel_size: 5 stride: 1 weight_filler { type: "xavier" } } }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "conv2" type: CONVOLUTION bottom: "pool1" top: "conv2" convolution_param { num_output: 50 kernel_size: 5 } }
layers { name: "pool2" type: POOLING bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "ip1" type: INNER_PRODUCT bottom: "pool2" top: "ip1" inner_product_param { num_output: 500 } }
layers { name: "relu1" type: RELU bottom: "ip1" top: "ip1" }
layers { name: "ip2" type: INNER_PRODUCT bottom: "ip1" top: "ip2" inner_product_param { num_output: 10 } }
layers { name: "prob" type: SOFTMAX bottom: "ip2" top: "loss" }
`;
    // re-encode the weights as V1 layers, unpacked floats, legacy 4-D blob dims
    const w = decodeCaffemodel(readFileSync(`${LENET}/lenet_iter_10000.caffemodel`));
    const layers = [...w.values()].filter((l) => l.blobs.length).map((l) => ({
      name: l.name, type: l.type === "InnerProduct" ? 14 : 4, blobs: l.blobs.map((b) => ({ shape: b.shape, data: b.data, legacy: true })),
    }));
    const model = encodeCaffemodel(layers, { v1: true, unpacked: true });
    const g = decodeCaffe(v1, model, { prototxtFile: "lenet-v1.prototxt", caffemodelFile: "lenet-v1.caffemodel" });
    const x = await readNpy(`${LENET}/ref/input.npy`);
    const ref = await readNpy(`${LENET}/ref/output_loss.npy`);
    const { ref: a, ort: b } = await runBoth(g, { data: x });
    check(a.loss!, ref, "V1 reference executor");
    check(b.loss!, ref, "V1 ort");
  });

  it("reads the prototxt without a caffemodel: zero-filled weights of the right shapes", async () => {
    const g = await readCaffe(`${RETINA}/retinaface.prototxt`);
    expect(g.metadata["caffe.weights"]).toBe("none (zero-filled)");
    const full = await readCaffe(`${RETINA}/retinaface.prototxt`, `${RETINA}/retinaface.caffemodel`);
    expect([...g.initializers.keys()]).toEqual([...full.initializers.keys()]);
    for (const [k, t] of g.initializers) expect(t.shape, k).toEqual(full.initializers.get(k)!.shape);
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual(full.outputs.map((o) => [o.name, o.shape]));
  });
});
