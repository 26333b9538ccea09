/**
 * Conversion state shared by the layer builders: SSA naming of Caffe blobs, static shapes, weights,
 * initializers and nodes. One `Converter` per network; each layer gets a `LayerCtx` view of it.
 */
import { Graph, ModelFormatError, Node, Tensor, shapeSize, type AttrValue } from "@q/ir";
import protobuf from "protobufjs";
import { Binder, has, posOf, unknownFields, type Msg } from "./bind.js";
import { caffeRoot } from "./caffe-proto.js";
import type { Pos } from "./prototxt.js";
import type { Blob, LayerWeights } from "./weights.js";

/** One layer of the prototxt after phase filtering, with V1 layers mapped to V2 type strings. */
export interface Layer {
  name: string;
  type: string;
  bottom: string[];
  top: string[];
  /** The bound LayerParameter or V1LayerParameter (parameter messages under their field names). */
  msg: Msg;
  pos?: Pos;
  /** The message type the layer was bound with (to find parameter message types). */
  msgType: protobuf.Type;
}

export type AttrInit = Record<string, number | string | number[] | AttrValue>;

/** A version of a blob: the IR value holding it and the name the version was given. */
interface Version {
  blob: string;
  /** IR value carrying the data (differs from `name` for aliases such as Dropout or Split). */
  value: string;
  /** The SSA name of this version. */
  name: string;
  consumed: boolean;
  /** Written by a layer (not a graph input). */
  produced: boolean;
}

export interface ConvertOptions {
  prototxtFile?: string;
  caffemodelFile?: string;
  weights?: Map<string, LayerWeights>;
  /** Input shapes by blob name, overriding what the prototxt declares. */
  inputShapes?: Record<string, number[]>;
}

const emptyBinder = new Binder();

export class Converter {
  readonly g = new Graph({ opsets: { "": 17 } });
  readonly shapes = new Map<string, number[]>();
  private readonly current = new Map<string, Version>();
  private readonly versions: Version[] = [];
  private readonly totalWrites = new Map<string, number>();
  private readonly writes = new Map<string, number>();
  private readonly taken = new Set<string>();
  private readonly inputBlobs = new Set<string>();

  constructor(
    readonly layers: Layer[],
    readonly opts: ConvertOptions,
  ) {
    for (const l of layers) {
      for (const t of l.top) this.totalWrites.set(t, (this.totalWrites.get(t) ?? 0) + 1);
      for (const b of [...l.bottom, ...l.top]) this.taken.add(b);
    }
  }

  get inputShapes(): Record<string, number[]> {
    return this.opts.inputShapes ?? {};
  }

  get file(): string | undefined {
    return this.opts.prototxtFile;
  }

  /** A value name not used yet. */
  fresh(base: string): string {
    let n = base;
    for (let k = 1; this.taken.has(n); k++) n = `${base}_${k}`;
    this.taken.add(n);
    return n;
  }

  /** Declare a graph input for blob `blob`. */
  addInput(blob: string, shape: number[], layer?: Layer): void {
    if (this.current.has(blob)) {
      throw new ModelFormatError(`${where(layer)}input blob '${blob}' is declared twice`, this.file);
    }
    if (shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new ModelFormatError(`${where(layer)}input '${blob}' has shape [${shape.join(", ")}]; every dim must be a positive integer (give opts.inputShapes)`, this.file);
    }
    this.inputBlobs.add(blob);
    this.taken.add(blob);
    this.g.inputs.push({ name: blob, dtype: "float32", shape: [...shape] });
    this.shapes.set(blob, [...shape]);
    const v: Version = { blob, value: blob, name: blob, consumed: false, produced: false };
    this.current.set(blob, v);
    this.versions.push(v);
  }

  hasBlob(blob: string): boolean {
    return this.current.has(blob);
  }

  /** Read the current version of a blob (marks it consumed). */
  read(blob: string, layer: Layer): string {
    const v = this.current.get(blob);
    if (!v) {
      const known = [...this.current.keys()];
      throw new ModelFormatError(
        `${where(layer)}reads blob '${blob}', which no earlier layer or input produces (known blobs: ${known.slice(0, 12).join(", ")}${known.length > 12 ? ", …" : ""})`,
        this.file,
      );
    }
    v.consumed = true;
    return v.value;
  }

  /** Name for the next version of `blob`: the last write keeps the blob's name, earlier ones get `blob#k`. */
  private versionName(blob: string): string {
    const k = this.writes.get(blob) ?? 0;
    this.writes.set(blob, k + 1);
    const total = this.totalWrites.get(blob) ?? 1;
    if (k === total - 1 && !this.inputBlobs.has(blob)) return blob;
    const base = `${blob}#${this.inputBlobs.has(blob) ? k + 1 : k}`;
    return this.fresh(base);
  }

  /** Start writing a top: returns the version (its name is the IR value to produce). */
  beginTop(blob: string): { name: string; commit: (shape: number[], value?: string) => void } {
    const name = this.versionName(blob);
    return {
      name,
      commit: (shape, value) => {
        const v: Version = { blob, value: value ?? name, name, consumed: false, produced: true };
        if (!value) this.shapes.set(name, shape);
        this.current.set(blob, v);
        this.versions.push(v);
      },
    };
  }

  /** Graph outputs: versions written by layers that nothing reads. Aliases get an Identity. */
  finish(): Graph {
    const g = this.g;
    for (const v of this.versions) {
      if (!v.produced || v.consumed) continue;
      if (v.value !== v.name) {
        g.nodes.push(new Node({ name: `${v.name}/identity`, opType: "Identity", inputs: [v.value], outputs: [v.name] }));
        this.shapes.set(v.name, this.shapes.get(v.value)!);
      }
      g.outputs.push({ name: v.name, dtype: "float32", shape: [...this.shapes.get(v.name)!] });
    }
    const io = new Set([...g.inputs.map((i) => i.name), ...g.outputs.map((o) => o.name)]);
    for (const n of g.nodes) {
      for (const o of n.outputs) {
        const s = this.shapes.get(o);
        if (s && !io.has(o)) g.valueInfo.set(o, { name: o, dtype: "float32", shape: [...s] });
      }
    }
    return g;
  }
}

function where(layer?: Layer): string {
  if (!layer) return "";
  const at = layer.pos ? ` at line ${layer.pos.line}` : "";
  return `layer '${layer.name}' (${layer.type})${at}: `;
}

/** What a layer builder sees. */
export class LayerCtx {
  private readonly pendingTops: (undefined | { name: string; commit: (shape: number[], value?: string) => void })[];
  private readonly bottomValues: string[];
  private nodeCount = 0;

  constructor(
    private readonly cv: Converter,
    readonly layer: Layer,
  ) {
    this.bottomValues = layer.bottom.map((b) => cv.read(b, layer));
    this.pendingTops = layer.top.map(() => undefined);
  }

  get name(): string {
    return this.layer.name;
  }

  get graph(): Graph {
    return this.cv.g;
  }

  /** ModelFormatError naming the prototxt and the layer. */
  fail(msg: string): never {
    throw new ModelFormatError(`${where(this.layer)}${msg}`, this.cv.file);
  }

  /** ModelFormatError naming the caffemodel and the layer. */
  failWeights(msg: string): never {
    throw new ModelFormatError(`${where(this.layer)}${msg}`, this.cv.opts.caffemodelFile ?? this.cv.file);
  }

  /** Check the number of bottoms and tops. */
  arity(bottoms: [number, number], tops: [number, number]): void {
    const nb = this.layer.bottom.length, nt = this.layer.top.length;
    const say = ([lo, hi]: [number, number]) => (lo === hi ? `${lo}` : hi === Infinity ? `at least ${lo}` : `${lo} to ${hi}`);
    if (nb < bottoms[0] || nb > bottoms[1]) this.fail(`has ${nb} bottom(s); the layer takes ${say(bottoms)}`);
    if (nt < tops[0] || nt > tops[1]) this.fail(`has ${nt} top(s); the layer takes ${say(tops)}`);
  }

  /**
   * The layer's `<field>` parameter message (defaults when absent). Fields q does not know are an
   * error: they may change what the layer computes.
   */
  param(field: string): Msg {
    let m = this.layer.msg[field] as Msg | undefined;
    if (!m) {
      const f = this.layer.msgType.fields[field];
      if (!f || !(f.resolvedType instanceof protobuf.Type)) this.fail(`internal: no parameter message '${field}'`);
      m = emptyBinder.bind({ kind: "msg", fields: [], pos: this.layer.pos ?? { line: 0, col: 0 } }, f.resolvedType);
    }
    const unk = unknownFields(m);
    if (unk.size) {
      const list = [...unk].map(([n, p]) => `'${n}' (line ${p.line}:${p.col})`).join(", ");
      this.fail(`${field} has field(s) q does not know: ${list}; they may change the layer's meaning, so q refuses to guess`);
    }
    return m;
  }

  has(m: Msg, field: string): boolean {
    return has(m, field);
  }

  posOf(m: Msg) {
    return posOf(m);
  }

  /** IR value of bottom i. */
  input(i: number): string {
    return this.bottomValues[i]!;
  }

  /** Static shape of bottom i. */
  shape(i: number): number[] {
    return [...this.cv.shapes.get(this.bottomValues[i]!)!];
  }

  shapeOf(value: string): number[] {
    const s = this.cv.shapes.get(value);
    if (!s) this.fail(`internal: no shape for '${value}'`);
    return [...s];
  }

  /** IR value name for top i (call once per top, then give its shape with `setTop`). */
  top(i: number): string {
    let p = this.pendingTops[i];
    if (!p) p = this.pendingTops[i] = this.cv.beginTop(this.layer.top[i]!);
    return p.name;
  }

  /** Record top i as computed into `top(i)` with `shape`. */
  setTop(i: number, shape: number[]): void {
    const name = this.top(i);
    this.cv.shapes.set(name, shape);
    this.pendingTops[i]!.commit(shape);
  }

  /** Top i carries the same data as `value` (Dropout, Split, identity Power). */
  alias(i: number, value: string): void {
    this.top(i);
    this.pendingTops[i]!.commit(this.shapeOf(value), value);
  }

  /** A fresh intermediate value name for this layer. */
  tmp(suffix: string, shape: number[]): string {
    const n = this.cv.fresh(`${this.layer.name}/${suffix}`);
    this.cv.shapes.set(n, shape);
    return n;
  }

  /** Add an initializer and return its name. */
  init(suffix: string, t: Tensor): string {
    const n = this.cv.fresh(`${this.layer.name}/${suffix}`);
    this.cv.g.initializers.set(n, t);
    return n;
  }

  f32(suffix: string, shape: number[], values: ArrayLike<number>): string {
    return this.init(suffix, Tensor.f32(shape, values));
  }

  i64(suffix: string, values: number[]): string {
    return this.init(suffix, Tensor.i64([values.length], values));
  }

  /** Add a node (the first one of a layer is named after the layer, later ones `layer/opType`). */
  node(opType: string, inputs: string[], outputs: string[], attrs: AttrInit = {}): Node {
    const a = new Map<string, AttrValue>();
    for (const [k, v] of Object.entries(attrs)) {
      if (typeof v === "number") a.set(k, Number.isInteger(v) && !FLOAT_ATTRS.has(k) ? { type: "int", value: v } : { type: "float", value: v });
      else if (typeof v === "string") a.set(k, { type: "string", value: v });
      else if (Array.isArray(v)) a.set(k, { type: "ints", value: v });
      else a.set(k, v);
    }
    const name = this.nodeCount++ === 0 ? this.layer.name : `${this.layer.name}/${opType}_${this.nodeCount - 1}`;
    const n = new Node({ name, opType, inputs, outputs, attrs: a });
    this.cv.g.nodes.push(n);
    return n;
  }

  /** Whether the caffemodel (or prototxt) gives this layer blobs; false when reading without weights. */
  get haveWeights(): boolean {
    return !!this.cv.opts.weights;
  }

  private blobs(): Blob[] | undefined {
    const w = this.cv.opts.weights?.get(this.layer.name);
    if (w) return w.blobs;
    const own = this.layer.msg.blobs as Msg[] | undefined;
    if (own?.length) return own.map(textBlob);
    return undefined;
  }

  /** Number of blobs the layer has (0 without weights). */
  blobCount(): number {
    return this.blobs()?.length ?? 0;
  }

  /**
   * Blob i, checked against the shape the prototxt implies. Without a caffemodel: zeros of that shape.
   * A blob stored with legacy 4-D dims, or with extra 1s, is reshaped when its size matches.
   */
  weight(i: number, expected: number[], what: string): Tensor {
    const blobs = this.blobs();
    if (!blobs) {
      if (this.cv.opts.weights) {
        const names = [...this.cv.opts.weights.keys()].filter((n) => this.cv.opts.weights!.get(n)!.blobs.length);
        this.failWeights(
          `the caffemodel has no weights for this layer (it has weights for ${names.length} layer(s)${names.length ? ": " + names.slice(0, 8).join(", ") + (names.length > 8 ? ", …" : "") : ""}); does it belong to ${this.cv.file ?? "this prototxt"}?`,
        );
      }
      return Tensor.zeros("float32", expected);
    }
    const b = blobs[i];
    if (!b) this.failWeights(`needs blob ${i} (${what}) but the caffemodel gives this layer ${blobs.length} blob(s); does it belong to ${this.cv.file ?? "this prototxt"}?`);
    const n = shapeSize(expected);
    const strip = (s: number[]) => s.filter((d) => d !== 1).join(",");
    if (b.data.length !== shapeSize(b.shape)) {
      this.failWeights(`blob ${i} (${what}) declares shape [${b.shape.join(", ")}] but holds ${b.data.length} values`);
    }
    const same = b.shape.length === expected.length && b.shape.every((d, k) => d === expected[k]);
    if (!same && !(b.data.length === n && (b.legacy || strip(b.shape) === strip(expected)))) {
      this.failWeights(
        `blob ${i} (${what}) has shape [${b.shape.join(", ")}] but the prototxt implies [${expected.join(", ")}]; the caffemodel does not match ${this.cv.file ?? "the prototxt"}`,
      );
    }
    return new Tensor("float32", expected, b.data);
  }
}

const FLOAT_ATTRS = new Set(["alpha", "beta", "bias", "epsilon", "momentum", "gamma", "extrapolation_value", "cubic_coeff_a", "min", "max", "lambd"]);

/** A blob written in the prototxt itself (`blobs { shape {…} data: … }`). */
function textBlob(m: Msg): Blob {
  const shapeMsg = m.shape as Msg | undefined;
  const data = Float32Array.from((m.data as number[]).length ? (m.data as number[]) : (m.double_data as number[]));
  if (shapeMsg) return { shape: (shapeMsg.dim as number[]).map(Number), legacy: false, data };
  const legacy = [m.num, m.channels, m.height, m.width].map((d) => Math.max(1, Number(d)));
  return { shape: has(m, "num") || has(m, "channels") || has(m, "height") || has(m, "width") ? legacy : [data.length], legacy: true, data };
}

export { caffeRoot };
