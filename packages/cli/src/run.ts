import { basename, extname } from "node:path";
import {
  InputMismatchError, ReferenceExecutor, UsageError, Tensor, readArrays, writeNpz, type Executor, type Feeds, type Graph,
} from "@q/ir";
import { OrtExecutor } from "@q/ort";
import { absentParams } from "@q/frontends-paddle";

/** 'a', 'b', 'c' and 12 more */
function nameList(names: string[], max = 8): string {
  const shown = names.slice(0, max).map((k) => `'${k}'`).join(", ");
  return names.length > max ? `${shown} and ${names.length - max} more` : shown || "none";
}

/** Match arrays from an input file to the model's inputs; convert float64->float32 / int32->int64. */
export function matchInputs(g: Graph, arrays: Map<string, Tensor>, file: string): { feeds: Feeds; ignored: string[] } {
  const feeds: Feeds = {};
  const names = g.inputs.map((i) => i.name);
  const single = g.inputs.length === 1 && arrays.size === 1;
  for (const inp of g.inputs) {
    let t = arrays.get(inp.name);
    if (!t && single) t = [...arrays.values()][0];
    if (!t) {
      throw new InputMismatchError(
        `has no array for model input '${inp.name}' (it has ${nameList([...arrays.keys()])}; the model takes ${nameList(names)})`,
        file,
      );
    }
    const want = inp.dtype;
    if (want && t.dtype !== want) {
      if (want === "float32" && (t.dtype === "float64" || t.dtype === "float16")) t = Tensor.fromNumbers("float32", t.shape, t.toNumbers());
      else if (want === "int64" && (t.dtype === "int32" || t.dtype === "int16" || t.dtype === "int8")) t = Tensor.fromNumbers("int64", t.shape, t.toNumbers());
      else throw new InputMismatchError(`array for input '${inp.name}' is ${t.dtype}, the model wants ${want}`, file);
    }
    const shape = inp.shape;
    if (shape) {
      // a scalar input fed from a 1-element array is fine
      if (shape.length === 0 && t.size === 1) t = t.reshape([]);
      const bad = t.shape.length !== shape.length || shape.some((d, i) => typeof d === "number" && d > 0 && d !== t!.shape[i]);
      if (bad) {
        const fmt = shape.map((d) => (d === null ? "?" : d)).join(",");
        throw new InputMismatchError(`array for input '${inp.name}' has shape [${t.shape}], the model wants [${fmt}]`, file);
      }
    }
    feeds[inp.name] = t;
  }
  const used = new Set(Object.values(feeds));
  const ignored = [...arrays].filter(([, t]) => !used.has(t)).map(([k]) => k);
  return { feeds, ignored };
}

export async function makeExecutor(g: Graph, kind: "ort" | "reference", dumpAll: boolean): Promise<Executor> {
  if (kind === "reference") return new ReferenceExecutor(g);
  return OrtExecutor.create(g, dumpAll ? { expose: "all" } : {});
}

export interface RunCommand {
  model: string;
  input: string;
  output?: string;
  executor: "ort" | "reference";
  dumpAll: boolean;
}

export function defaultOutput(model: string): string {
  return `${basename(model, extname(model))}_outputs.npz`;
}

/** Run a model on an .npz/.npy input and write its outputs (and with dumpAll every value). */
export async function runModel(g: Graph, cmd: RunCommand, warn: (s: string) => void): Promise<{ path: string; tensors: Record<string, Tensor> }> {
  const absent = absentParams(g);
  if (absent.length) {
    throw new UsageError(`${cmd.model}: ${absent.length} parameters have no values (graph-only model); give the weight file with --weights`);
  }
  const arrays = await readArrays(cmd.input);
  const { feeds, ignored } = matchInputs(g, arrays, cmd.input);
  if (ignored.length) warn(`warning: ${cmd.input}: arrays not used by the model: ${ignored.join(", ")}\n`);
  const ex = await makeExecutor(g, cmd.executor, cmd.dumpAll);
  try {
    const res = await ex.run(feeds, { all: cmd.dumpAll });
    const out: Record<string, Tensor> = {};
    if (cmd.dumpAll) for (const [k, v] of Object.entries(feeds)) out[k] = v;
    for (const [k, v] of Object.entries(res)) out[k] = v;
    for (const o of g.outputs) if (res[o.name]) out[o.name] = res[o.name]!;
    const path = cmd.output ?? defaultOutput(cmd.model);
    await writeNpz(path, out);
    return { path, tensors: out };
  } finally {
    await ex.dispose();
  }
}
