/**
 * ONNX's node conformance tests (Debian package libonnx-testdata): each folder holds model.onnx
 * and test_data_set_0/{input,output}_N.pb. Loads a case and runs it through the reference
 * interpreter, comparing as ONNX's backend test runner does (rtol 1e-3, atol 1e-7).
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ReferenceExecutor, Tensor, supportedOps, type Graph } from "@q/ir";
import { readOnnxSync, readTensorProto } from "@q/frontends-onnx";

export const NODE_TESTS = process.env.ONNX_NODE_TESTS ?? "/usr/share/libonnx-testdata/data/node";
export const HAVE_NODE_TESTS = existsSync(NODE_TESTS);

/** The op set the foundation issue lists: every one must pass its float32 cases. */
export const LISTED_OPS = [
  "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Erf", "Neg", "Abs",
  "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Softmax", "BatchNormalization",
  "LayerNormalization", "InstanceNormalization", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Concat",
  "Split", "Slice", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Pad", "Resize", "ReduceMean", "ReduceMax",
  "ReduceSum", "Gather", "Shape", "Constant", "ConstantOfShape", "Cast", "Expand", "Where", "Equal", "ArgMax", "Identity",
  "Dropout", "LSTM", "QuantizeLinear", "DequantizeLinear",
];

export interface NodeCase {
  dir: string;
  name: string;
  /** Op under test (the single node's op, or the op the case name starts with). */
  op: string;
  expanded: boolean;
}

export function listCases(): NodeCase[] {
  if (!HAVE_NODE_TESTS) return [];
  const out: NodeCase[] = [];
  for (const name of readdirSync(NODE_TESTS).sort()) {
    const dir = join(NODE_TESTS, name);
    if (!existsSync(join(dir, "model.onnx"))) continue;
    let g: Graph;
    try {
      g = readOnnxSync(join(dir, "model.onnx"), { allowUnknownOps: true });
    } catch {
      continue;
    }
    const expanded = name.includes("_expanded");
    // a single node names the op; otherwise (expanded functions, helper Constant nodes) the case name does
    const op = g.nodes.length === 1 ? g.nodes[0]!.opType : opFromName(name, g);
    out.push({ dir, name, op, expanded });
  }
  return out;
}

/** The op a multi-node case tests: the longest op name (of the graph or with a kernel) the case name starts with. */
function opFromName(name: string, g: Graph): string {
  const base = name.replace(/^test_/, "").replace(/_expanded.*$/, "").replace(/_/g, "").toLowerCase();
  const ops = [...new Set(g.nodes.map((n) => n.opType))];
  const candidates = [...new Set([...ops, ...supportedOps()])].sort((a, b) => b.length - a.length);
  return candidates.find((o) => base.startsWith(o.toLowerCase())) ?? `${ops[0]}*`;
}

export interface CaseData {
  graph: Graph;
  inputs: Record<string, Tensor>;
  outputs: { name: string; tensor: Tensor }[];
}

export function loadCase(c: NodeCase): CaseData {
  const graph = readOnnxSync(join(c.dir, "model.onnx"), { allowUnknownOps: true });
  const ds = join(c.dir, "test_data_set_0");
  const inputs: Record<string, Tensor> = {};
  graph.inputs.forEach((inp, i) => {
    const f = join(ds, `input_${i}.pb`);
    if (existsSync(f)) inputs[inp.name] = asDeclared(readTensorProto(f).tensor, inp.dtype);
  });
  const outputs = graph.outputs.map((o, i) => ({ name: o.name, tensor: asDeclared(readTensorProto(join(ds, `output_${i}.pb`)).tensor, o.dtype) }));
  return { graph, inputs, outputs };
}

/**
 * Older ONNX releases (1.12 among them) store bfloat16 test data as uint16 tensors of the raw
 * bits; read them as the bfloat16 the model declares.
 */
function asDeclared(t: Tensor, declared: string | undefined): Tensor {
  if (declared === "bfloat16" && t.dtype === "uint16") return new Tensor("bfloat16", t.shape, t.data);
  return t;
}

/** All data tensors of a case (inputs and outputs) are float32 or integer index tensors. */
export function isFloat32Case(d: CaseData): boolean {
  const ts = [...Object.values(d.inputs), ...d.outputs.map((o) => o.tensor)];
  const floats = ts.filter((t) => t.dtype.startsWith("float") || t.dtype === "bfloat16");
  return floats.length > 0 && floats.every((t) => t.dtype === "float32");
}

/** Compare as ONNX's backend tests do: |a-b| <= atol + rtol*|b|, NaN == NaN, exact for ints. */
export function compare(actual: Tensor, expected: Tensor, rtol = 1e-3, atol = 1e-7): string | null {
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i])) {
    return `shape [${actual.shape}] != expected [${expected.shape}]`;
  }
  if (expected.dtype === "string") {
    const a = actual.data as string[], b = expected.data as string[];
    const i = b.findIndex((v, k) => v !== a[k]);
    return i < 0 ? null : `string ${i}: '${a[i]}' != '${b[i]}'`;
  }
  if (actual.dtype !== expected.dtype) return `dtype ${actual.dtype} != expected ${expected.dtype}`;
  const a = actual.toNumbers(), b = expected.toNumbers();
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (Number.isNaN(y) && Number.isNaN(x)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return `element ${i}: ${x} != expected ${y}`;
  }
  return null;
}

/** Run a case in the reference interpreter; returns null on pass, else the reason. */
export function runCase(d: CaseData): string | null {
  const ex = new ReferenceExecutor(d.graph);
  const res = ex.runSync(d.inputs);
  for (const o of d.outputs) {
    const got = res[o.name];
    if (!got) return `output '${o.name}' missing`;
    const why = compare(got, o.tensor);
    if (why) return `output '${o.name}': ${why}`;
  }
  return null;
}
