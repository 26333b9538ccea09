import { existsSync, readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import {
  GraphError, MissingFileError, ModelFormatError, UnknownOpError,
  type Dim, type DType, type Graph, type ValueInfo, ONNX_DTYPE,
} from "@q/ir";
import { Converter, NCHW, NodeCtx, int, parseRef, refName, type TfVal } from "./convert.js";
import { OPS, supportedTfOps } from "./ops.js";
import { foldConvBias } from "./passes.js";
import { GraphDefMsg, has, toNum, type PAttr, type PGraph, type PNode } from "./proto.js";
import { decodeTfTensor, fileDtype, shapeDims } from "./tensor.js";

export interface ReadTfOptions {
  /** Graph inputs as TF tensor names (`node` or `node:k`). Default: the Placeholders the outputs need. */
  inputs?: string[];
  /** Graph outputs as TF tensor names. Default: nodes nobody consumes (Const/NoOp/Placeholder excluded). */
  outputs?: string[];
  /** Shapes for inputs (in the TF layout, e.g. NHWC), by input name; replaces unknown (-1) dims. */
  inputShapes?: Record<string, number[]>;
  /**
   * Present 4-D float inputs and outputs in NCHW (the layout q works in; Knight's -c2chw). Default
   * false: inputs and outputs keep the TF model's own layout and names.
   */
  nchw?: boolean;
  /** Fold a constant per-channel Add after a Conv (TF's BiasAdd) into the Conv's bias (default true). */
  foldBias?: boolean;
  /** Fold SpaceToBatchND → conv → BatchToSpaceND into one dilated Conv (default true). */
  foldDilatedConv?: boolean;
}

/** Read a frozen TensorFlow GraphDef (`.pb`) into IR (ai.onnx ops, opset 17). */
export async function readTf(pbPath: string, opts: ReadTfOptions = {}): Promise<Graph> {
  return readTfSync(pbPath, opts);
}

export function readTfSync(pbPath: string, opts: ReadTfOptions = {}): Graph {
  const full = resolve(pbPath);
  if (!existsSync(full) || !statSync(full).isFile()) throw new MissingFileError(pbPath, "TensorFlow GraphDef (.pb) file");
  return decodeTf(readFileSync(full), { ...opts, file: pbPath });
}

/** Convert GraphDef bytes. `file` names the source in messages. */
export function decodeTf(bytes: Uint8Array, opts: ReadTfOptions & { file?: string } = {}): Graph {
  const file = opts.file;
  let pg: PGraph;
  try {
    pg = GraphDefMsg.decode(bytes) as unknown as PGraph;
  } catch (e) {
    throw new ModelFormatError(`not a valid TensorFlow GraphDef (protobuf decoding failed: ${(e as Error).message}); the file is truncated or not a frozen .pb`, file);
  }
  const nodes = pg.node ?? [];
  if (!nodes.length) throw new ModelFormatError("GraphDef has no nodes (empty, truncated or not a frozen TensorFlow .pb)", file);
  const byName = new Map<string, PNode>();
  nodes.forEach((n, i) => {
    if (!n.name || !n.op) throw new ModelFormatError(`node #${i} has no ${n.name ? "op" : "name"} (corrupt file?)`, file);
    if (byName.has(n.name)) throw new ModelFormatError(`two nodes are named '${n.name}' (corrupt file?)`, file);
    byName.set(n.name, n);
  });
  if (opts.foldDilatedConv ?? true) foldDilatedConvs(nodes, byName, file);
  return new Reader(nodes, byName, opts, file).run();
}

const dataInputs = (n: PNode) => (n.input ?? []).filter((x) => !x.startsWith("^"));

function normRef(r: string): string {
  const { node, port } = parseRef(r);
  return refName(node, port);
}

class Reader {
  readonly c: Converter;
  private readonly inputRefs: Set<string>;
  private readonly graphInputs: ValueInfo[] = [];
  private readonly done = new Set<string>();

  constructor(
    readonly nodes: PNode[],
    readonly byName: Map<string, PNode>,
    readonly opts: ReadTfOptions,
    readonly file?: string,
  ) {
    this.c = new Converter(file);
    this.inputRefs = new Set((opts.inputs ?? []).map(normRef));
    for (const r of this.inputRefs) {
      if (!byName.has(parseRef(r).node)) {
        throw new GraphError(`input '${r}' is not a node of the graph; Placeholders are: ${this.placeholders().join(", ") || "(none)"}`, file);
      }
    }
  }

  private placeholders(): string[] {
    return this.nodes.filter((n) => n.op === "Placeholder").map((n) => n.name!);
  }

  private defaultOutputs(): string[] {
    const used = new Set<string>();
    for (const n of this.nodes) for (const i of dataInputs(n)) used.add(parseRef(i).node);
    const skip = new Set(["Const", "NoOp", "Placeholder"]);
    return this.nodes.filter((n) => !used.has(n.name!) && !skip.has(n.op!)).map((n) => n.name!);
  }

  run(): Graph {
    const outs = (this.opts.outputs ?? this.defaultOutputs()).map(normRef);
    if (!outs.length) throw new GraphError("the graph has no outputs (every node is consumed); name them with outputs", this.file);
    for (const o of outs) {
      if (!this.byName.has(parseRef(o).node)) {
        const cands = this.defaultOutputs().slice(0, 10);
        throw new GraphError(`output '${o}' is not a node of the graph${cands.length ? `; nodes nobody consumes: ${cands.join(", ")}` : ""}`, this.file);
      }
    }
    for (const o of outs) this.need(o);

    const c = this.c;
    const g = c.g;
    // graph inputs in file order (the DFS meets them in dependency order)
    const order = new Map(this.nodes.map((n, k) => [n.name!, k]));
    const explicit = [...this.inputRefs];
    const rank = (name: string) => (this.opts.inputs ? explicit.indexOf(name) : order.get(parseRef(name).node) ?? 0);
    g.inputs = [...this.graphInputs].sort((a, b) => rank(a.name) - rank(b.name));
    const outNames = new Set<string>();
    for (const o of outs) {
      const v = c.vals.get(o);
      if (!v) throw new GraphError(`output '${o}' does not exist (node '${parseRef(o).node}' has no output ${parseRef(o).port})`, this.file);
      const rank = c.rank(v);
      const dt = c.dtype(v.ir);
      let ir = this.opts.nchw && rank === 4 && dt !== undefined && dt.startsWith("float") ? c.to(v, NCHW) : c.plain(v);
      ir = this.nameOutput(ir, o, outNames);
      outNames.add(ir);
      const info: ValueInfo = { name: ir };
      const t = c.types.get(ir);
      if (t?.dtype) info.dtype = t.dtype;
      if (t?.shape) info.shape = [...t.shape];
      g.outputs.push(info);
    }
    g.producerName = "q-frontends-tf";
    if (this.file) g.source = this.file;
    g.prune();
    g.topoSort();
    if (this.opts.foldBias ?? true) foldConvBias(g);
    const produced = new Set(g.nodes.flatMap((n) => n.outputs));
    for (const [k, t] of c.types) {
      if (!produced.has(k) || outNames.has(k)) continue;
      const vi: ValueInfo = { name: k };
      if (t.dtype) vi.dtype = t.dtype;
      if (t.shape) vi.shape = [...t.shape];
      g.valueInfo.set(k, vi);
    }
    return g;
  }

  /** Give the IR value of a graph output the TF name (rename the value, or add an Identity). */
  private nameOutput(ir: string, want: string, taken: Set<string>): string {
    const c = this.c;
    const g = c.g;
    if (ir === want) return ir;
    const isInput = g.inputs.some((i) => i.name === ir);
    const producer = g.nodes.find((n) => n.outputs.includes(ir));
    const clash = g.nodes.some((n) => n.outputs.includes(want) || n.inputs.includes(want)) || g.initializers.has(want) || g.inputs.some((i) => i.name === want);
    if (clash) throw new GraphError(`cannot name output '${want}': the name is used by another value`, this.file);
    if (producer && !isInput && !taken.has(ir)) {
      for (const n of g.nodes) {
        n.inputs = n.inputs.map((x) => (x === ir ? want : x));
        n.outputs = n.outputs.map((x) => (x === ir ? want : x));
      }
      const t = c.types.get(ir);
      if (t) c.types.set(want, t);
      for (const v of c.vals.values()) if (v.ir === ir) v.ir = want;
      return want;
    }
    c.claim(want);
    return c.emit("Identity", [ir], {}, [want])[0]!;
  }

  /** Convert everything `ref` depends on (iterative DFS over data inputs). */
  private need(ref: string): void {
    const stack: { node: PNode; deps: string[]; i: number }[] = [];
    const visiting = new Set<string>();
    const push = (r: string): void => {
      if (this.c.vals.has(r)) return;
      if (this.inputRefs.has(r)) {
        this.addInput(r);
        return;
      }
      const name = parseRef(r).node;
      const node = this.byName.get(name);
      if (!node) throw new GraphError(`a node reads '${r}', but the graph has no node '${name}' (truncated or incomplete GraphDef?)`, this.file);
      if (this.done.has(name)) return;
      if (visiting.has(name)) throw new GraphError(`the graph has a cycle through node '${name}'`, this.file);
      visiting.add(name);
      stack.push({ node, deps: node.op === "Placeholder" || node.op === "Const" ? [] : dataInputs(node).map(normRef), i: 0 });
    };
    push(ref);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.i < top.deps.length) {
        push(top.deps[top.i++]!);
        continue;
      }
      stack.pop();
      visiting.delete(top.node.name!);
      this.convert(top.node);
      this.done.add(top.node.name!);
    }
    if (!this.c.vals.has(ref)) {
      const { node, port } = parseRef(ref);
      throw new GraphError(`'${ref}' does not exist: node '${node}' (${this.byName.get(node)?.op}) has no output ${port}`, this.file);
    }
  }

  private convert(node: PNode): void {
    const c = this.c;
    const name = node.name!;
    const op = node.op!;
    if (op === "Const") {
      const a = node.attr?.value;
      if (!a || !has(a, "tensor")) throw new ModelFormatError(`Const '${name}' has no value`, this.file);
      const t = decodeTfTensor(a.tensor!, name, this.file);
      c.vals.set(name, { tf: name, ir: c.addConst(t, name) });
      return;
    }
    if (op === "Placeholder") {
      this.addInput(name);
      return;
    }
    const build = OPS[op];
    if (!build) {
      throw new UnknownOpError(op, "", name, `TensorFlow op '${op}' has no converter in q (supported: ${supportedTfOps().join(", ")})`, this.file);
    }
    build(new NodeCtx(c, node));
  }

  /** Make the TF value `ref` a graph input. */
  private addInput(ref: string): void {
    const c = this.c;
    if (c.vals.has(ref)) return;
    const { node: nodeName } = parseRef(ref);
    const node = this.byName.get(nodeName)!;
    const attr = (k: string): PAttr | undefined => node.attr?.[k];
    const dtAttr = [attr("dtype"), attr("T")].find((a) => a && has(a, "type"));
    let dtype: DType = dtAttr ? (fileDtype(dtAttr.type!) ?? "float32") : "float32";
    if (node.op === "Const" && attr("value")?.tensor) dtype = fileDtype(attr("value")!.tensor!.dtype ?? 1) ?? "float32";
    const given = this.opts.inputShapes?.[ref] ?? this.opts.inputShapes?.[`${ref}:0`];
    const a = attr("shape");
    let shape: Dim[] | undefined;
    if (given) shape = [...given];
    else if (node.op === "Placeholder" && a && has(a, "shape")) {
      const dims = shapeDims(a.shape);
      if (dims) shape = dims.map((d, i) => (d >= 0 ? d : i === 0 ? "N" : `${ref}_d${i}`));
    }
    const nchw = !!this.opts.nchw && shape?.length === 4 && dtype.startsWith("float");
    const irShape = nchw ? NCHW.map((i) => shape![i]!) : shape;
    c.claim(ref);
    const info: ValueInfo = { name: ref, dtype };
    if (irShape) info.shape = irShape;
    this.graphInputs.push(info);
    c.types.set(ref, { dtype, ...(irShape ? { shape: [...irShape] } : {}) });
    let v: TfVal = { tf: ref, ir: ref };
    if (nchw) v.layout = NCHW;
    if (dtype === "int32") {
      // int32 is int64 inside the IR (see irDtype)
      v = { tf: ref, ir: c.emit1("Cast", [ref], { to: int(ONNX_DTYPE.int64) }, `${ref}/int64`) };
    }
    c.vals.set(ref, v);
  }
}

// ------------------------------------------------------------ dilated convolution pattern

const enc = new TextEncoder();
const dec = new TextDecoder();

function constOf(ref: string, byName: Map<string, PNode>, file?: string): number[] | undefined {
  let n = byName.get(parseRef(ref).node);
  for (let hops = 0; n && n.op === "Identity" && hops < 16; hops++) n = byName.get(parseRef(dataInputs(n)[0] ?? "").node);
  const a = n?.op === "Const" ? n.attr?.value : undefined;
  if (!a?.tensor) return undefined;
  return decodeTfTensor(a.tensor, n!.name!, file).toArray();
}

/**
 * TF writes a dilated convolution as SpaceToBatchND → Conv2D/DepthwiseConv2dNative (VALID) →
 * BatchToSpaceND. Rewrite it to one conv with dilations = block and explicit paddings = the
 * SpaceToBatch paddings less the BatchToSpace crops; the BatchToSpaceND becomes an Identity.
 */
function foldDilatedConvs(nodes: PNode[], byName: Map<string, PNode>, file?: string): number {
  const uses = new Map<string, number>();
  for (const n of nodes) for (const i of dataInputs(n)) {
    const k = parseRef(i).node;
    uses.set(k, (uses.get(k) ?? 0) + 1);
  }
  const str = (n: PNode, k: string, d: string) => (n.attr?.[k] && has(n.attr[k], "s") ? dec.decode(n.attr[k]!.s) : d);
  const list = (n: PNode, k: string, d: number[]) => (n.attr?.[k] && has(n.attr[k], "list") ? (n.attr[k]!.list!.i ?? []).map(toNum) : d);
  let folded = 0;
  for (const b2s of [...nodes]) {
    if (b2s.op !== "BatchToSpaceND") continue;
    const [b2sIn, b2sBlock, b2sCrops] = dataInputs(b2s);
    if (!b2sIn || parseRef(b2sIn).port !== 0) continue;
    const conv = byName.get(parseRef(b2sIn).node);
    if (!conv || (conv.op !== "Conv2D" && conv.op !== "DepthwiseConv2dNative")) continue;
    if (str(conv, "data_format", "NHWC") !== "NHWC" || str(conv, "padding", "") !== "VALID") continue;
    if (list(conv, "strides", [1, 1, 1, 1]).some((s) => s !== 1) || list(conv, "dilations", [1, 1, 1, 1]).some((s) => s !== 1)) continue;
    const convIn = dataInputs(conv)[0];
    if (!convIn || parseRef(convIn).port !== 0) continue;
    const s2b = byName.get(parseRef(convIn).node);
    if (!s2b || s2b.op !== "SpaceToBatchND") continue;
    if (uses.get(conv.name!) !== 1 || uses.get(s2b.name!) !== 1) continue;
    const [s2bIn, s2bBlock, s2bPads] = dataInputs(s2b);
    const block = constOf(s2bBlock ?? "", byName, file);
    const block2 = constOf(b2sBlock ?? "", byName, file);
    const pads = constOf(s2bPads ?? "", byName, file);
    const crops = constOf(b2sCrops ?? "", byName, file);
    if (!block || !block2 || !pads || !crops || block.length !== 2 || block.join() !== block2.join()) continue;
    if (pads.length !== 4 || crops.length !== 4) continue;
    const p = pads.map((v, i) => v - crops[i]!);
    if (p.some((v) => v < 0)) continue;
    const attrs: Record<string, PAttr> = { ...(conv.attr ?? {}) };
    attrs.dilations = { list: { i: [1, block[0]!, block[1]!, 1] } };
    attrs.padding = { s: enc.encode("EXPLICIT") };
    attrs.explicit_paddings = { list: { i: [0, 0, p[0]!, p[1]!, p[2]!, p[3]!, 0, 0] } };
    const newConv: PNode = { ...conv, input: [s2bIn!, ...(conv.input ?? []).slice(1)], attr: attrs };
    const newB2s: PNode = { ...b2s, op: "Identity", input: [conv.name!], attr: {} };
    nodes[nodes.indexOf(conv)] = newConv;
    nodes[nodes.indexOf(b2s)] = newB2s;
    byName.set(conv.name!, newConv);
    byName.set(b2s.name!, newB2s);
    // the SpaceToBatchND is dead now (its only reader was the conv)
    nodes.splice(nodes.indexOf(s2b), 1);
    byName.delete(s2b.name!);
    folded++;
  }
  return folded;
}
