/**
 * Top-dialect MLIR as TPU-MLIR's model_transform writes it (spec sophgo.md §5): a module with
 * `module.*` attributes, one `func.func @main`, `top.Input` per argument (carrying the
 * preprocessing attributes), `top.None`, `top.Weight` ops whose data lives in an .npz keyed by
 * the weight's location name, and generic-form top ops located by `loc(#locN)` aliases whose
 * names are the op names used in every table and npz.
 */
import { dirname, isAbsolute, join } from "node:path";
import {
  foldConstants, Graph, GraphError, inferShapes, ModelFormatError, Node, readNpz, Tensor, UnknownOpError,
  writeFileAtomic, writeNpz, readFileChecked, type AttrValue,
} from "@q/ir";
import {
  A, Attrs, dtypeOfElem, elemType, formatAttrDict, locNames, mlirString, MlirParser, tensorType,
  type MAttr, type MOp, type MType,
} from "./mlir-text.js";
import { checkStatic, ONNX_TO_TOP, TOP_TO_ONNX, type ReadCtx, type WriteCtx } from "./top-ops.js";

/** Preprocessing attributes of `top.Input` (used by calibration / deploy image loading). */
export interface TopPreprocess {
  mean?: number[];
  scale?: number[];
  /** rgb, bgr, gray, rgba, ... */
  pixelFormat?: string;
  /** nchw or nhwc */
  channelFormat?: string;
  resizeDims?: number[];
  keepAspectRatio?: boolean;
  /** letterbox, short_side_scale */
  keepRatioMode?: string;
  /** normal or center */
  padType?: string;
  padValue?: number;
}

export interface WriteTopMlirOptions {
  /** `module.name`; also the base of TPU-MLIR's file names. */
  modelName: string;
  /** `module.weight_file`: the .npz next to the .mlir (e.g. `<model>_top_f32_all_origin_weight.npz`). */
  weightFile: string;
  /** Preprocessing written on every `top.Input`. */
  preprocess?: TopPreprocess;
  /** Per-input preprocessing (overrides `preprocess`). */
  inputPreprocess?: Record<string, TopPreprocess>;
  /** Concrete input shapes (e.g. batch 1) for models with symbolic dims. */
  inputShapes?: Record<string, number[]>;
  /** `module.platform` (default "ONNX"). */
  platform?: string;
  /**
   * Op names: "value" (default) uses IR value names as they are; "tpu-mlir" appends
   * `_<OnnxOpType>` like TPU-MLIR's OnnxConverter (`122_Conv`), so q's tables match files
   * TPU-MLIR produces from the same model.
   */
  naming?: "value" | "tpu-mlir";
}

export interface TopMlirResult {
  mlir: string;
  /** Weight tensors (float32) keyed by weight name: the content of `weightFile`. */
  weights: Map<string, Tensor>;
  /** IR value name → op (location) name in the .mlir, for renaming plans and tables. */
  names: Map<string, string>;
}

function preprocessAttrs(p: TopPreprocess | undefined, shape: number[]): Record<string, MAttr> {
  const a: Record<string, MAttr> = {};
  if (!p) return a;
  const c = shape.length === 4 ? (p.channelFormat === "nhwc" ? shape[3]! : shape[1]!) : 1;
  const fill = (v: number[] | undefined, d: number) => (v ? (v.length === 1 && c > 1 ? new Array<number>(c).fill(v[0]!) : v) : new Array<number>(c).fill(d));
  a.mean = A.f64s(fill(p.mean, 0));
  a.scale = A.f64s(fill(p.scale, 1));
  a.pixel_format = A.str(p.pixelFormat ?? "bgr");
  a.channel_format = A.str(p.channelFormat ?? "nchw");
  const hw = shape.length === 4 ? (p.channelFormat === "nhwc" ? [shape[1]!, shape[2]!] : [shape[2]!, shape[3]!]) : [];
  a.resize_dims = A.i64s(p.resizeDims ?? hw);
  a.keep_aspect_ratio = A.bool(p.keepAspectRatio ?? false);
  if (p.keepRatioMode !== undefined) a.keep_ratio_mode = A.str(p.keepRatioMode);
  if (p.padType !== undefined) a.pad_type = A.str(p.padType);
  if (p.padValue !== undefined) a.pad_value = A.i64(p.padValue);
  return a;
}

/**
 * Write a graph as top-dialect MLIR text plus its weights. The graph is not modified: a copy gets
 * input shapes fixed, constants folded (shape computations become weights/attributes) and shapes
 * inferred. Every value must end up with a static shape (GraphError otherwise); ops without a
 * mapping throw UnknownOpError naming the node.
 */
export function writeTopMlir(graph: Graph, opts: WriteTopMlirOptions): TopMlirResult {
  const g = graph.clone();
  const inferOpts = opts.inputShapes ? { inputShapes: opts.inputShapes } : {};
  if (opts.inputShapes) {
    for (const inp of g.inputs) {
      const s = opts.inputShapes[inp.name];
      if (s) inp.shape = [...s];
    }
  }
  inferShapes(g, inferOpts);
  foldConstants(g, inferOpts);
  inferShapes(g, inferOpts);
  g.topoSort();
  const opset = g.opset("");
  const naming = opts.naming ?? "value";

  const body: string[] = [];
  const locs: string[] = []; // alias bodies; index k is #loc{k+1}
  const locOf = new Map<string, string>();
  const nameLoc = (name: string): string => {
    let l = locOf.get(name);
    if (!l) {
      locs.push(`loc(${mlirString(name)})`);
      l = `#loc${locs.length}`;
      locOf.set(name, l);
    }
    return l;
  };
  const refs = new Map<string, { ssa: string; type: string }>(); // IR value -> SSA
  const weights = new Map<string, Tensor>();
  const names = new Map<string, string>();
  const usedNames = new Set<string>();
  let ssa = 0;
  const typeOf = (shape: number[]) => tensorType(shape, "f32");
  const shapeOf = (name: string): number[] => {
    const init = g.initializers.get(name);
    if (init) return [...init.shape];
    return checkStatic(g.info(name)?.shape, `value '${name}'`);
  };
  const uniqueName = (base: string): string => {
    let n = base;
    for (let k = 1; usedNames.has(n); k++) n = `${base}_${k}`;
    usedNames.add(n);
    return n;
  };
  for (const k of g.initializers.keys()) usedNames.add(k);

  const noneRef = `%${ssa++}`;
  body.push(`    ${noneRef} = "top.None"() : () -> none loc(#loc)`);
  const ssaType = new Map<string, string>([[noneRef, "none"]]);

  // inputs
  const args: string[] = [];
  g.inputs.forEach((inp, i) => {
    const shape = checkStatic(inp.shape, `input '${inp.name}'`);
    if (inp.dtype && inp.dtype !== "float32") {
      throw new GraphError(`input '${inp.name}' is ${inp.dtype}; top.Input takes float32 tensors (integer inputs are not supported yet)`);
    }
    const t = typeOf(shape);
    args.push(`%arg${i}: ${t} loc(unknown)`);
    const r = `%${ssa++}`;
    const pp = preprocessAttrs(opts.inputPreprocess?.[inp.name] ?? opts.preprocess, shape);
    const dict = formatAttrDict(pp);
    usedNames.add(inp.name);
    body.push(`    ${r} = "top.Input"(%arg${i})${dict ? ` ${dict}` : ""} : (${t}) -> ${t} loc(${nameLoc(inp.name)})`);
    refs.set(inp.name, { ssa: r, type: t });
    ssaType.set(r, t);
    names.set(inp.name, inp.name);
  });

  const weightRef = (name: string, t: Tensor): string => {
    const have = refs.get(name);
    if (have) return have.ssa;
    if (t.dtype === "string") throw new GraphError(`initializer '${name}' is a string tensor; it cannot be a top.Weight`);
    const data = t.dtype === "float32" ? t : new Tensor("float32", t.shape, t.toFloat32());
    weights.set(name, data);
    const ty = typeOf([...t.shape]);
    const r = `%${ssa++}`;
    body.push(`    ${r} = "top.Weight"() : () -> ${ty} loc(${nameLoc(name)})`);
    refs.set(name, { ssa: r, type: ty });
    ssaType.set(r, ty);
    return r;
  };

  for (const node of g.nodes) {
    if (node.domain !== "" && node.domain !== "ai.onnx") {
      throw new UnknownOpError(node.opType, node.domain, node.label, "custom-domain ops have no top-dialect mapping");
    }
    const fn = ONNX_TO_TOP[node.opType];
    if (!fn) {
      throw new UnknownOpError(node.opType, node.domain, node.label, `no top-dialect mapping for ${node.opType} (mapped ops: ${Object.keys(ONNX_TO_TOP).join(", ")})`, graph.source);
    }
    for (const o of node.outputs) {
      if (!o) continue;
      const dt = g.info(o)?.dtype;
      if (dt && dt !== "float32" && node.opType !== "Identity") {
        throw new GraphError(`node '${node.label}' (${node.opType}) produces ${dt} value '${o}'; only float32 computations can be written as top ops (fold shape computations first)`);
      }
    }
    const ctx: WriteCtx = {
      node,
      opset,
      ref(i) {
        const name = node.inputs[i];
        if (!name) return noneRef;
        const init = g.initializers.get(name);
        if (init) return weightRef(name, init);
        const r = refs.get(name);
        if (!r) throw new GraphError(`node '${node.label}' reads '${name}', which was not written yet`);
        return r.ssa;
      },
      none: () => noneRef,
      konst: (i) => (node.inputs[i] ? g.initializers.get(node.inputs[i]!) : undefined),
      konstNums(i, what) {
        const t = node.inputs[i] ? g.initializers.get(node.inputs[i]!) : undefined;
        if (!t) throw new UnknownOpError(node.opType, node.domain, node.label, `its ${what} input is not a constant; top ops need it as an attribute (fix input shapes so it folds)`);
        return t.toArray();
      },
      weight(base, t) {
        const n = uniqueName(base);
        return weightRef(n, t);
      },
      shape: shapeOf,
      inShape: (i) => shapeOf(node.inputs[i]!),
      outShape: (k = 0) => shapeOf(node.outputs[k]!),
      tmp: (base) => uniqueName(base),
      alias(k, s) {
        refs.set(node.outputs[k]!, { ssa: s, type: ssaType.get(s) ?? "" });
      },
      emit(op, operands, attrs, outputs, outShapes) {
        const shapes = outShapes ?? outputs.map(shapeOf);
        const rtypes = shapes.map(typeOf);
        const locNames_ = outputs.map((o) => {
          const isNodeOut = node.outputs.includes(o);
          const n = isNodeOut ? (naming === "tpu-mlir" ? uniqueName(`${o}_${node.opType}`) : (usedNames.add(o), o)) : o;
          names.set(o, n);
          return n;
        });
        const base = `%${ssa++}`;
        const results = outputs.length > 1 ? outputs.map((_, k) => `${base}#${k}`) : [base];
        const lhs = outputs.length > 1 ? `${base}:${outputs.length}` : base;
        let loc: string;
        if (outputs.length > 1) {
          const parts = locNames_.map(nameLoc);
          locs.push(`loc(fused[${parts.join(", ")}])`);
          loc = `#loc${locs.length}`;
        } else loc = nameLoc(locNames_[0]!);
        const otypes = operands.map((o) => ssaType.get(o) ?? "none");
        const dict = formatAttrDict(attrs);
        const rt = rtypes.length === 1 ? rtypes[0]! : `(${rtypes.join(", ")})`;
        body.push(`    ${lhs} = ${mlirString(op)}(${operands.join(", ")})${dict ? ` ${dict}` : ""} : (${otypes.join(", ")}) -> ${rt} loc(${loc})`);
        outputs.forEach((o, k) => {
          refs.set(o, { ssa: results[k]!, type: rtypes[k]! });
          ssaType.set(results[k]!, rtypes[k]!);
        });
        return results;
      },
    };
    fn(ctx);
  }

  const outRefs = g.outputs.map((o) => {
    const r = refs.get(o.name);
    if (!r) throw new GraphError(`graph output '${o.name}' is not computed by any written op`);
    return r;
  });
  const resultTypes = outRefs.map((r) => r.type);
  const resSig = resultTypes.length === 1 ? resultTypes[0]! : `(${resultTypes.join(", ")})`;
  const modAttrs: Record<string, MAttr> = {
    "module.chip": A.str("ALL"),
    "module.name": A.str(opts.modelName),
    "module.platform": A.str(opts.platform ?? "ONNX"),
    "module.state": A.str("TOP_F32"),
    "module.top_run_mode": A.str("STATIC"),
    "module.weight_file": A.str(opts.weightFile),
  };
  const lines = [
    "#loc = loc(unknown)",
    `module attributes ${formatAttrDict(modAttrs)} {`,
    `  func.func @main(${args.join(", ")}) -> ${resSig} {`,
    ...body,
    `    return ${outRefs.map((r) => r.ssa).join(", ")} : ${resultTypes.join(", ")} loc(#loc)`,
    "  } loc(#loc)",
    "} loc(#loc)",
    ...locs.map((l, k) => `#loc${k + 1} = ${l}`),
  ];
  return { mlir: `${lines.join("\n")}\n`, weights, names };
}

/**
 * Write `<mlirPath>` and the weight .npz (`opts.weightFile`, relative to the .mlir's folder
 * unless absolute), both atomically.
 */
export async function writeTopMlirFiles(mlirPath: string, graph: Graph, opts: WriteTopMlirOptions): Promise<TopMlirResult> {
  const res = writeTopMlir(graph, opts);
  const npz = isAbsolute(opts.weightFile) ? opts.weightFile : join(dirname(mlirPath), opts.weightFile);
  await writeNpz(npz, res.weights);
  await writeFileAtomic(mlirPath, new TextEncoder().encode(res.mlir), "mlir file");
  return res;
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface ParsedTopMlir {
  graph: Graph;
  /** Module attributes (`module.name`, `module.weight_file`, `module.state`, ...), as text/number. */
  module: Record<string, string | number | boolean>;
  /** Preprocessing of each input, from its `top.Input` attributes. */
  preprocess: Map<string, TopPreprocess>;
}

function attrToPlain(a: MAttr): string | number | boolean {
  return a.k === "str" ? a.v : a.k === "int" || a.k === "float" ? a.v : a.k === "bool" ? a.v : JSON.stringify(a);
}

function readPreprocess(a: Attrs): TopPreprocess | undefined {
  const p: TopPreprocess = {};
  const m = a.nums("mean");
  if (m) p.mean = m;
  const s = a.nums("scale");
  if (s) p.scale = s;
  if (a.has("pixel_format")) p.pixelFormat = a.str("pixel_format", "");
  if (a.has("channel_format")) p.channelFormat = a.str("channel_format", "");
  const r = a.nums("resize_dims");
  if (r) p.resizeDims = r;
  if (a.has("keep_aspect_ratio")) p.keepAspectRatio = a.bool("keep_aspect_ratio", false);
  if (a.has("keep_ratio_mode")) p.keepRatioMode = a.str("keep_ratio_mode", "");
  if (a.has("pad_type")) p.padType = a.str("pad_type", "");
  if (a.has("pad_value")) p.padValue = a.int("pad_value", 0);
  return Object.keys(p).length ? p : undefined;
}

/**
 * Parse top-dialect MLIR text into IR (ONNX ops, opset 17). Weights come from `weights` (keys =
 * weight location names). Throws ModelFormatError naming the file and line for text it cannot
 * parse, UnknownOpError for top ops without a mapping back.
 */
export function parseTopMlir(text: string, weights: Map<string, Tensor> | undefined, file?: string): ParsedTopMlir {
  const p = new MlirParser(text, file);
  const mod = p.parseModule();
  const fn = mod.funcs.find((f) => f.name === "main") ?? mod.funcs[0];
  if (!fn) throw new ModelFormatError("no function in the module (expected func.func @main)", file);
  const module: Record<string, string | number | boolean> = {};
  for (const [k, v] of mod.attrs) module[k] = attrToPlain(v);
  const g = new Graph({ name: mod.name ?? String(module["module.name"] ?? "main"), opsets: { "": 17 } });
  g.producerName = "q (from top-dialect MLIR)";
  if (file) g.source = file;
  for (const [k, v] of Object.entries(module)) g.metadata[k] = String(v);
  const preprocess = new Map<string, TopPreprocess>();

  type SsaVal = { kind: "none" } | { kind: "value"; name: string; type: MType };
  const vals = new Map<string, SsaVal>();
  const argTypes = new Map(fn.args.map((a) => [a.name, a.type]));
  const used = new Set<string>();
  const unique = (base: string): string => {
    let n = base;
    for (let k = 1; used.has(n); k++) n = `${base}_${k}`;
    used.add(n);
    return n;
  };
  const where = (op: MOp) => `${file ?? "mlir"}:${op.line}: ${op.name}`;
  let anon = 0;

  for (const op of fn.ops) {
    const names = locNames(op.loc, mod.locAliases);
    const nameFor = (k: number): string => unique(names[k] ?? (names[0] !== undefined ? `${names[0]}_${k}` : `v${anon++}`));
    const shapeOfType = (t: MType | undefined, what: string): number[] => {
      if (!t || !t.shape || t.shape.some((d) => d < 0)) throw new ModelFormatError(`${where(op)}: ${what} needs a static ranked tensor type`, file);
      return t.shape;
    };
    if (op.hasRegions) throw new UnknownOpError(op.name, "", names[0] ?? op.results[0] ?? "?", "ops with regions (If/Loop) are not supported", file);
    if (op.name === "top.None") {
      for (const r of op.results) vals.set(r, { kind: "none" });
      continue;
    }
    if (op.name === "top.Input") {
      const argT = argTypes.get(op.operands[0] ?? "");
      const t = op.resultTypes[0] ?? argT;
      const name = nameFor(0);
      g.inputs.push({ name, dtype: dtypeOfElem(t?.elem ?? "f32"), shape: shapeOfType(t, "top.Input") });
      const pp = readPreprocess(new Attrs(op.attrs, () => where(op)));
      if (pp) preprocess.set(name, pp);
      vals.set(op.results[0]!, { kind: "value", name, type: t! });
      continue;
    }
    if (op.name === "top.Weight") {
      const t = op.resultTypes[0]!;
      const shape = shapeOfType(t, "top.Weight");
      const key = names[0];
      if (key === undefined) throw new ModelFormatError(`${where(op)}: a top.Weight without a location name (its npz key)`, file);
      const data = weights?.get(key);
      if (!data) throw new ModelFormatError(`${where(op)}: weight '${key}' is not in the weight file${weights ? "" : " (no weight file given)"}`, file);
      const n = shape.reduce((a, b) => a * b, 1);
      if (data.size !== n) throw new ModelFormatError(`${where(op)}: weight '${key}' has ${data.size} elements in the npz, the type says [${shape.join("x")}]`, file);
      const name = unique(key);
      const dt = dtypeOfElem(t.elem);
      g.initializers.set(name, dt === "float32" ? new Tensor("float32", shape, data.toFloat32()) : Tensor.fromNumbers(dt, shape, data.toNumbers()));
      vals.set(op.results[0]!, { kind: "value", name, type: t });
      continue;
    }
    const fnR = TOP_TO_ONNX[op.name];
    if (!fnR) throw new UnknownOpError(op.name, "", names[0] ?? "?", `no mapping from ${op.name} back to ONNX ops`, file);
    const ins = op.operands.map((o) => {
      const v = vals.get(o);
      if (!v) throw new ModelFormatError(`${where(op)}: operand ${o} is not defined before use`, file);
      return v;
    });
    const outNames = op.results.map((_, k) => nameFor(k));
    const a = new Attrs(op.attrs, () => where(op));
    const r: ReadCtx = {
      op: op.name,
      a,
      nIn: ins.length,
      nOut: outNames.length,
      in: (i) => {
        const v = ins[i];
        return v && v.kind === "value" ? v.name : "";
      },
      isNone: (i) => !ins[i] || ins[i]!.kind === "none",
      konst: (i) => {
        const v = ins[i];
        return v && v.kind === "value" ? g.initializers.get(v.name) : undefined;
      },
      inShape: (i) => {
        const v = ins[i];
        return shapeOfType(v && v.kind === "value" ? v.type : op.operandTypes[i], `operand ${i}`);
      },
      out: (k) => outNames[k]!,
      outShape: (k = 0) => shapeOfType(op.resultTypes[k], `result ${k}`),
      node(opType, inputs, outputs, attrs = {}) {
        g.nodes.push(new Node({ name: outputs[0], opType, inputs, outputs, attrs: attrs as Record<string, AttrValue> }));
      },
      init(base, t) {
        const n = unique(base);
        g.initializers.set(n, t);
        return n;
      },
      tmp: (base) => unique(base),
      asInt64(i) {
        const v = ins[i];
        if (!v || v.kind !== "value") throw new ModelFormatError(`${where(op)}: operand ${i} is none`, file);
        const w = g.initializers.get(v.name);
        if (w) {
          if (w.dtype === "int64" || w.dtype === "int32") return v.name;
          return r.init(`${v.name}_i64`, Tensor.i64([...w.shape], Array.from(w.toNumbers(), Math.round)));
        }
        if (dtypeOfElem(v.type.elem) === "int64" || dtypeOfElem(v.type.elem) === "int32") return v.name;
        const c = unique(`${v.name}_i64`);
        g.nodes.push(new Node({ name: c, opType: "Cast", inputs: [v.name], outputs: [c], attrs: { to: { type: "int", value: 7 } } }));
        return c;
      },
      fail(msg) {
        throw new UnknownOpError(op.name, "", outNames[0] ?? "?", msg, file);
      },
    };
    fnR(r);
    op.results.forEach((res, k) => {
      const t = op.resultTypes[k] ?? op.resultTypes[0]!;
      vals.set(res, { kind: "value", name: outNames[k]!, type: t });
      if (t.shape) g.valueInfo.set(outNames[k]!, { name: outNames[k]!, dtype: dtypeOfElem(t.elem), shape: [...t.shape] });
    });
  }
  if (!fn.returns) throw new ModelFormatError(`function @${fn.name} has no return`, file);
  for (const o of fn.returns.operands) {
    const v = vals.get(o);
    if (!v || v.kind !== "value") throw new ModelFormatError(`${file ?? "mlir"}:${fn.returns.line}: return operand ${o} is not a value`, file);
    const out: { name: string; dtype: ReturnType<typeof dtypeOfElem>; shape?: number[] } = { name: v.name, dtype: dtypeOfElem(v.type.elem) };
    if (v.type.shape) out.shape = [...v.type.shape];
    g.outputs.push(out);
  }
  g.prune();
  return { graph: g, module, preprocess };
}

/**
 * Read a top-dialect .mlir (and its weight .npz: `weightNpzPath`, else `module.weight_file`
 * resolved next to the .mlir) into IR. Input preprocessing is kept in
 * `graph.metadata["sophgo.preprocess"]` (JSON by input name).
 */
export async function readTopMlir(mlirPath: string, weightNpzPath?: string): Promise<Graph> {
  const text = new TextDecoder("utf-8").decode(await readFileChecked(mlirPath, "mlir file"));
  let npz = weightNpzPath;
  if (npz === undefined) {
    const m = /module\.weight_file\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(text);
    if (m) npz = isAbsolute(m[1]!) ? m[1]! : join(dirname(mlirPath), m[1]!);
  }
  const weights = npz !== undefined && /top\.Weight/.test(text) ? await readNpz(npz) : new Map<string, Tensor>();
  const { graph, preprocess } = parseTopMlir(text, weights, mlirPath);
  if (preprocess.size) graph.metadata["sophgo.preprocess"] = JSON.stringify(Object.fromEntries(preprocess));
  return graph;
}
