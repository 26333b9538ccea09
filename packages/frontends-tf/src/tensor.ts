import { ModelFormatError, Tensor, allocData, shapeSize, type DType } from "@q/ir";
import { TF_DTYPE as T, toNum, type PShape, type PTensor } from "./proto.js";

/**
 * The IR dtype for a TF DataType. Policy: TF int32 (the index type of shapes, axes, paddings) is
 * held as int64 inside the IR so that it mixes freely with ONNX's int64 shape ops. Graph inputs keep
 * their declared dtype and are cast once at the boundary.
 */
export function irDtype(tf: number): DType | undefined {
  const t = tf > 100 ? tf - 100 : tf;
  return t === T.INT32 ? "int64" : fileDtype(t);
}

/** The IR dtype with the same storage as the TF DataType (no int32 → int64 promotion). */
export function fileDtype(tf: number): DType | undefined {
  switch (tf > 100 ? tf - 100 : tf) {
    case T.FLOAT: return "float32";
    case T.DOUBLE: return "float64";
    case T.INT32: case T.QINT32: return "int32";
    case T.UINT8: case T.QUINT8: return "uint8";
    case T.INT16: case T.QINT16: return "int16";
    case T.INT8: case T.QINT8: return "int8";
    case T.STRING: return "string";
    case T.INT64: return "int64";
    case T.BOOL: return "bool";
    case T.BFLOAT16: return "bfloat16";
    case T.UINT16: case T.QUINT16: return "uint16";
    case T.HALF: return "float16";
    case T.UINT32: return "uint32";
    case T.UINT64: return "uint64";
    default: return undefined;
  }
}

export const TF_DTYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(T).map(([k, v]) => [v, k]));

/** Dims of a TensorShapeProto: -1 for unknown; undefined when the rank is unknown. */
export function shapeDims(s: PShape | undefined): number[] | undefined {
  if (!s) return [];
  if (s.unknown_rank) return undefined;
  return (s.dim ?? []).map((d) => toNum(d.size));
}

/** Decode a Const's TensorProto into an IR tensor (int32 promoted to int64, see irDtype). */
export function decodeTfTensor(p: PTensor, where: string, file?: string): Tensor {
  const tf = p.dtype ?? 0;
  const dt = fileDtype(tf);
  if (!dt) throw new ModelFormatError(`Const '${where}' has dtype ${TF_DTYPE_NAMES[tf] ?? tf}, which q cannot read`, file);
  const shape = shapeDims(p.tensor_shape) ?? [];
  if (shape.some((d) => d < 0)) throw new ModelFormatError(`Const '${where}' has an unknown dim in its shape [${shape}]`, file);
  const n = shapeSize(shape);
  const raw = p.tensor_content;
  let t: Tensor;
  if (raw && raw.length > 0 && dt !== "string") {
    t = fromBytes(dt, shape, raw, where, file);
  } else {
    t = fromTyped(dt, shape, n, p, where, file);
  }
  if (dt === "int32") t = Tensor.fromNumbers("int64", t.shape, t.toNumbers());
  return t;
}

function fromBytes(dt: DType, shape: number[], raw: Uint8Array, where: string, file?: string): Tensor {
  const n = shapeSize(shape);
  const data = allocData(dt, n) as Exclude<ReturnType<typeof allocData>, string[]>;
  const bytes = data.byteLength;
  if (raw.length !== bytes) {
    throw new ModelFormatError(`Const '${where}': tensor_content has ${raw.length} bytes, shape [${shape}] of ${dt} needs ${bytes} (truncated file?)`, file);
  }
  // copy: the view into the file buffer is usually not aligned for the typed array
  new Uint8Array(data.buffer, data.byteOffset, bytes).set(raw);
  return new Tensor(dt, shape, data);
}

/** The typed *_val fields; fewer values than elements repeat the last one (none: all zero). */
function fromTyped(dt: DType, shape: number[], n: number, p: PTensor, where: string, file?: string): Tensor {
  if (dt === "string") {
    const dec = new TextDecoder();
    const vals = (p.string_val ?? []).map((s) => dec.decode(s));
    const out = new Array<string>(n).fill("");
    for (let i = 0; i < n; i++) out[i] = vals.length ? vals[Math.min(i, vals.length - 1)]! : "";
    return new Tensor("string", shape, out);
  }
  let src: ArrayLike<number>;
  let bits = false;
  switch (dt) {
    case "float32": src = p.float_val ?? []; break;
    case "float64": src = p.double_val ?? []; break;
    case "int64": src = (p.int64_val ?? []).map(toNum); break;
    case "uint64": src = (p.uint64_val ?? []).map(toNum); break;
    case "uint32": src = p.uint32_val ?? []; break;
    case "bool": src = (p.bool_val ?? []).map((b) => (b ? 1 : 0)); break;
    case "float16": case "bfloat16": src = p.half_val ?? []; bits = true; break;
    case "int32": case "int16": case "int8": case "uint8": case "uint16": src = p.int_val ?? []; break;
    default: throw new ModelFormatError(`Const '${where}': no typed value field for ${dt}`, file);
  }
  const m = src.length;
  if (m > n) throw new ModelFormatError(`Const '${where}' holds ${m} values but its shape [${shape}] has ${n} elements`, file);
  const t = Tensor.zeros(dt, shape);
  if (m === 0) return t;
  if (bits) {
    const u = t.data as Uint16Array;
    for (let i = 0; i < n; i++) u[i] = src[Math.min(i, m - 1)]! & 0xffff;
    return t;
  }
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = src[Math.min(i, m - 1)]!;
  t.setFromNumbers(v);
  return t;
}
