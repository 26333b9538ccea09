import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MissingFileError, ModelFormatError, UnknownOpError } from "@q/ir";
import { decodeCaffe, readCaffe } from "./index.js";
import { encodeCaffemodel } from "./test-util.js";
import { HAVE_SHARED, SHARED } from "../../../tools/testing/shared-models.js";

const tmp = mkdtempSync(join(tmpdir(), "q-caffe-"));
const write = (name: string, data: string | Uint8Array) => {
  const p = join(tmp, name);
  writeFileSync(p, data);
  return p;
};

const CONV_NET = `name: "t"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
`;
const convWeights = (o: number) => encodeCaffemodel([{ name: "conv", type: "Convolution", blobs: [{ shape: [o, 3, 3, 3], data: new Float32Array(o * 27) }, { shape: [o], data: new Float32Array(o) }] }]);

async function caught(p: Promise<unknown> | (() => unknown)): Promise<Error> {
  try {
    if (typeof p === "function") p();
    else await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

describe("bad input", () => {
  it("missing prototxt or caffemodel → MissingFileError naming the file", async () => {
    const proto = write("ok.prototxt", CONV_NET);
    let e = await caught(readCaffe(join(tmp, "nope.prototxt")));
    expect(e).toBeInstanceOf(MissingFileError);
    expect(e.message).toContain("nope.prototxt");
    e = await caught(readCaffe(proto, join(tmp, "nope.caffemodel")));
    expect(e).toBeInstanceOf(MissingFileError);
    expect(e.message).toContain("nope.caffemodel");
  });

  it("a prototxt syntax error → ModelFormatError with file and line:column", async () => {
    const p = write("syntax.prototxt", `name: "t"\nlayer {\n  name: "a"\n  type "ReLU"\n}\n`);
    const e = await caught(readCaffe(p));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toContain(`${p}: 4:8: expected ':' or '{' after field name 'type'`);
  });

  it("a value of the wrong type and a field q does not know → ModelFormatError with line:column", async () => {
    let e = await caught(readCaffe(write("type.prototxt", CONV_NET.replace("kernel_size: 3", 'kernel_size: "3"'))));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toMatch(/type\.prototxt: 3:\d+: field 'kernel_size' of ConvolutionParameter is an integer/);
    e = await caught(readCaffe(write("unknown.prototxt", CONV_NET.replace("kernel_size: 3", "kernel_size: 3 fancy_mode: 2"))));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toMatch(/layer 'conv' \(Convolution\).*'fancy_mode' \(line 3:\d+\)/);
    e = await caught(readCaffe(write("enum.prototxt", CONV_NET.replace("kernel_size: 3", "kernel_size: 3 engine: FAST"))));
    expect(e.message).toMatch(/3:\d+: field 'engine' of ConvolutionParameter: 'FAST' is not one of DEFAULT, CAFFE, CUDNN/);
  });

  it("an unknown layer type → UnknownOpError naming the layer and the type", async () => {
    const p = write("unknown-layer.prototxt", `${CONV_NET}layer { name: "weird" type: "FancyOp" bottom: "conv" top: "y" }\n`);
    const e = await caught(readCaffe(p));
    expect(e).toBeInstanceOf(UnknownOpError);
    const u = e as UnknownOpError;
    expect(u.nodeName).toBe("weird");
    expect(u.opType).toBe("FancyOp");
    expect(u.message).toContain("unknown-layer.prototxt");
    expect(u.message).toMatch(/'weird'.*FancyOp/);
  });

  it("a blob whose shape does not match the prototxt → ModelFormatError naming the caffemodel and the layer", async () => {
    const p = write("conv.prototxt", CONV_NET);
    const m = write("conv3.caffemodel", convWeights(3));
    const e = await caught(readCaffe(p, m));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toContain(m);
    expect(e.message).toMatch(/layer 'conv' \(Convolution\).*blob 0 \(weights\) has shape \[3, 3, 3, 3\] but the prototxt implies \[4, 3, 3, 3\]/);
    // and with the right one it reads
    await expect(readCaffe(p, write("conv4.caffemodel", convWeights(4)))).resolves.toBeDefined();
  });

  it("a truncated caffemodel, a prototxt given as caffemodel and a caffemodel given as prototxt → ModelFormatError", async () => {
    const p = write("conv2.prototxt", CONV_NET);
    const full = convWeights(4);
    let e = await caught(readCaffe(p, write("cut.caffemodel", full.subarray(0, full.length - 7))));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toContain("cut.caffemodel");
    e = await caught(readCaffe(p, p));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toMatch(/conv2\.prototxt: is a prototxt/);
    e = await caught(readCaffe(write("w.caffemodel", full), p));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toMatch(/w\.caffemodel: is binary/);
  });

  it("a layer reading a blob nobody produced, and a data layer without a shape", () => {
    let e = (() => { try { decodeCaffe(`${CONV_NET}layer { name: "r" type: "ReLU" bottom: "nothing" top: "r" }`, undefined, { prototxtFile: "x.prototxt" }); } catch (err) { return err as Error; } })();
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e!.message).toMatch(/x\.prototxt: layer 'r' \(ReLU\) at line 4: reads blob 'nothing'/);
    const dataNet = `layer { name: "d" type: "Data" top: "data" top: "label" include { phase: TEST } }\nlayer { name: "r" type: "ReLU" bottom: "data" top: "r" }`;
    e = (() => { try { decodeCaffe(dataNet); } catch (err) { return err as Error; } })();
    expect(e!.message).toMatch(/inputShapes/);
    const g = decodeCaffe(`${dataNet}\nlayer { name: "acc" type: "Accuracy" bottom: "r" bottom: "label" top: "acc" include { phase: TRAIN } }`, undefined, { inputShapes: { data: [2, 3, 4, 4] } });
    expect(g.inputs.map((i) => [i.name, i.shape])).toEqual([["data", [2, 3, 4, 4]]]);
    expect(g.outputs.map((o) => o.name)).toEqual(["r"]);
  });
});

describe.skipIf(!HAVE_SHARED)("bad input on the shared models", () => {
  it("lenet prototxt with the retinaface caffemodel → ModelFormatError naming the caffemodel and layer conv1", async () => {
    const m = `${SHARED}/caffe/retinaface/retinaface.caffemodel`;
    const e = await caught(readCaffe(`${SHARED}/caffe/lenet-mnist/mnist_deploy.prototxt`, m));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toContain(m);
    expect(e.message).toMatch(/layer 'conv1' \(Convolution\).*no weights for this layer/);
  });

  it("lenet prototxt with a changed num_output → blob shape mismatch naming layer ip2", async () => {
    const text = readFileSync(`${SHARED}/caffe/lenet-mnist/mnist_deploy.prototxt`, "utf8").replace("num_output: 10", "num_output: 12");
    const m = `${SHARED}/caffe/lenet-mnist/lenet_iter_10000.caffemodel`;
    const e = await caught(readCaffe(write("lenet12.prototxt", text), m));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e.message).toContain(m);
    expect(e.message).toMatch(/layer 'ip2' \(InnerProduct\).*\[10, 500\] but the prototxt implies \[12, 500\]/);
  });
});
