import { describe, expect, it, beforeAll } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readNpy, readNpz, writeNpz, type Tensor } from "@q/ir";
import { readOnnx } from "@q/frontends-onnx";
import { OrtExecutor } from "@q/ort";
import { q } from "./test-helpers.js";
import { HAVE_SHARED, SHARED, SKIP_SHARED_MSG, cosine, relMaxDiff } from "../../../tools/testing/shared-models.js";

/**
 * Every Caffe, TensorFlow, Paddle and PyTorch model in ../shared/test-models, through the CLI:
 * `q convert` to ONNX must run in onnxruntime-node and reproduce the outputs the original
 * framework produced (files beside each model), and `q run` must write the same outputs.
 */
interface Case {
  id: string;
  model: string;
  args?: string[];
  inputs: Record<string, string>;
  refs: Record<string, string>;
}
const S = (p: string) => resolve(SHARED, p);
const __dirname = dirname(fileURLToPath(import.meta.url));
const retina = ["bbox_pred", "landmark_pred", "cls_prob_reshape"].flatMap((k) => [8, 16, 32].map((s) => `face_rpn_${k}_stride${s}`));
const CASES: Case[] = [
  {
    id: "caffe lenet", model: S("caffe/lenet-mnist/mnist_deploy.prototxt"),
    args: ["--weights", S("caffe/lenet-mnist/lenet_iter_10000.caffemodel"), "--input-shapes", "data:10,1,28,28"],
    inputs: { data: S("caffe/lenet-mnist/ref/input.npy") }, refs: { loss: S("caffe/lenet-mnist/ref/output_loss.npy") },
  },
  {
    id: "caffe retinaface", model: S("caffe/retinaface/retinaface.prototxt"),
    inputs: { data: S("caffe/retinaface/ref/input.npy") },
    refs: Object.fromEntries(retina.map((b) => [b, S(`caffe/retinaface/ref/output_${b}.npy`)])),
  },
  {
    id: "tf blazeface", model: S("tf-pb/blazeface/blazeface.pb"), inputs: { input: S("tf-pb/blazeface/ref/img_0/input_input.npy") },
    refs: Object.fromEntries(["Identity", "Identity_1", "Identity_2", "Identity_3"].map((o) => [o, S(`tf-pb/blazeface/ref/img_0/tfjs_${o}.npy`)])),
  },
  { id: "tf emotion", model: S("tf-pb/emotion/emotion.pb"), inputs: { input_1: S("tf-pb/emotion/ref/img_0/input_input_1.npy") }, refs: { Identity: S("tf-pb/emotion/ref/img_0/tfjs_Identity.npy") } },
  { id: "tf iris", model: S("tf-pb/iris/iris.pb"), inputs: { input_1: S("tf-pb/iris/ref/img_0/input_input_1.npy") }, refs: { Identity: S("tf-pb/iris/ref/img_0/tfjs_Identity.npy") } },
  {
    id: "tf nanodet", model: S("tf-pb/nanodet/nanodet.pb"), inputs: { input_1: S("tf-pb/nanodet/ref/img_0/input_input_1.npy") },
    refs: Object.fromEntries([0, 1, 2, 3, 4, 5].map((i) => { const o = i ? `Identity_${i}` : "Identity"; return [o, S(`tf-pb/nanodet/ref/img_0/tfjs_${o}.npy`)]; })),
  },
  {
    id: "paddle ppocr-cls", model: S("paddle/ppocr-cls/ocrV3_cls.pdmodel"),
    inputs: { x: S("paddleocr-onnx/ref/cls_0/input_x.npy") }, refs: { "softmax_0.tmp_0": S("paddleocr-onnx/ref/cls_0/ort_softmax_0.tmp_0.npy") },
  },
  {
    id: "torch resnet20 traced", model: S("torch/resnet20_cifar10/resnet20_cifar10_traced.pt"),
    inputs: { "*": S("torch/resnet20_cifar10/ref/input.npy") }, refs: { "*": S("torch/resnet20_cifar10/ref/output_logits.npy") },
  },
  {
    id: "torch resnet20 definition script", model: resolve(__dirname, "../../frontends-torch/examples/resnet20.mjs"),
    args: ["--weights", S("torch/resnet20_cifar10/resnet20_cifar10_state_dict.pth")],
    inputs: { "*": S("torch/resnet20_cifar10/ref/input.npy") }, refs: { "*": S("torch/resnet20_cifar10/ref/output_logits.npy") },
  },
  {
    id: "torch resnet20 state dict + --definition", model: S("torch/resnet20_cifar10/orig/resnet20-12fca82f.th"),
    args: ["--definition", resolve(__dirname, "../../frontends-torch/examples/resnet20.mjs")],
    inputs: { "*": S("torch/resnet20_cifar10/ref/input.npy") }, refs: { "*": S("torch/resnet20_cifar10/ref/output_logits.npy") },
  },
];


function expectClose(got: Tensor, ref: Tensor, what: string) {
  expect(got.size, what).toBe(ref.size);
  const a = got.toFloat32(), b = ref.toFloat32();
  expect(cosine(a, b), what).toBeGreaterThanOrEqual(0.9999);
  expect(relMaxDiff(a, b), what).toBeLessThanOrEqual(1e-3);
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "q-formats-"));
});

describe.skipIf(!HAVE_SHARED)("other formats through the CLI", () => {
  for (const c of CASES) {
    it(`${c.id}: q info, q convert -> ONNX in onnxruntime-node, q run all reproduce the framework's outputs`, async () => {
      const info = await q("info", c.model, ...(c.args ?? []), "--json");
      expect(info.code, info.err).toBe(0);
      expect(JSON.parse(info.out).nodes).toBeGreaterThan(0);

      const onnx = join(dir, `${c.id.replace(/\W+/g, "_")}.onnx`);
      const conv = await q("convert", c.model, ...(c.args ?? []), "-o", onnx);
      expect(conv.code, conv.err).toBe(0);
      const g = await readOnnx(onnx);
      const feeds: Record<string, Tensor> = {};
      for (const [name, file] of Object.entries(c.inputs)) feeds[name === "*" ? g.inputs[0]!.name : name] = await readNpy(file);
      const refName = (n: string) => (n === "*" ? g.outputs[0]!.name : n);
      const ex = await OrtExecutor.create(g);
      const res = await ex.run(feeds);
      await ex.dispose();
      for (const [name, file] of Object.entries(c.refs)) expectClose(res[refName(name)]!, await readNpy(file), `${c.id} ${name} (ONNX in ORT)`);

      const inNpz = join(dir, `${c.id.replace(/\W+/g, "_")}_in.npz`);
      await writeNpz(inNpz, feeds);
      const outNpz = join(dir, `${c.id.replace(/\W+/g, "_")}_out.npz`);
      const run = await q("run", c.model, ...(c.args ?? []), "--input", inNpz, "-o", outNpz);
      expect(run.code, run.err).toBe(0);
      const out = await readNpz(outNpz);
      for (const [name, file] of Object.entries(c.refs)) expectClose(out.get(refName(name))!, await readNpy(file), `${c.id} ${name} (q run)`);
    });
  }
});

describe.skipIf(HAVE_SHARED)("other formats through the CLI", () => {
  it.skip(SKIP_SHARED_MSG, () => {});
});

describe.skipIf(!HAVE_SHARED)("bad input in other formats: exit 2, one line naming the file", () => {
  const fails = async (re: RegExp, ...args: string[]) => {
    const r = await q(...args);
    expect(r.code, r.out).toBe(2);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(re);
  };
  it("a .caffemodel that does not belong to its prototxt", async () => {
    await fails(/retinaface\.caffemodel.*conv1/, "info", S("caffe/lenet-mnist/mnist_deploy.prototxt"), "--weights", S("caffe/retinaface/retinaface.caffemodel"));
  });
  it("a truncated .pdiparams", async () => {
    const bytes = readFileSync(S("paddle/ppocr-cls/ocrV3_cls.pdiparams"));
    const f = join(dir, "cut.pdiparams");
    writeFileSync(f, bytes.subarray(0, bytes.length >> 1));
    await fails(/cut\.pdiparams/, "info", S("paddle/ppocr-cls/ocrV3_cls.pdmodel"), "--weights", f);
  });
  it("running a graph-only Paddle model asks for its weights", async () => {
    const npz = join(dir, "in.npz");
    await writeNpz(npz, { inputs: await readNpy(S("torch/resnet20_cifar10/ref/input.npy")) });
    await fails(/267 parameters have no values.*--weights/, "run", S("paddle/graph-only/inference.pdmodel"), "--input", npz, "-o", join(dir, "never.npz"));
    expect(existsSync(join(dir, "never.npz"))).toBe(false);
  });
  it("a pickle that calls os.system is refused, and nothing runs", async () => {
    const marker = join(dir, "pwned");
    const cmd = `touch ${marker}`;
    // protocol 2: GLOBAL 'os system', the command, TUPLE1, REDUCE, STOP
    const pkl = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from("cos\nsystem\n", "latin1"), Buffer.from([0x58]), Buffer.from(Uint32Array.of(cmd.length).buffer), Buffer.from(cmd, "latin1"), Buffer.from([0x85, 0x52, 0x2e])]);
    const f = join(dir, "evil.pth");
    writeFileSync(f, pkl);
    await fails(/evil\.pth.*os\.system/, "info", f);
    expect(existsSync(marker)).toBe(false);
  });
});
