/**
 * Paddle parameter files: LoDTensor records (formats spec §4.3). A combined file (.pdiparams,
 * __params__) is a bare concatenation of records for the saved variables in name-sorted order; the
 * old layout has one file per variable holding one record.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ModelFormatError, MissingFileError, Tensor, allocData, bytesPerElement, shapeSize, type DType } from "@q/ir";
import { TensorDescT, VT, toNum, type PTensorDesc } from "./proto.js";

/** Paddle VarType.Type → q dtype (tensor element types only). */
const PADDLE_DTYPES: ReadonlyMap<number, DType> = new Map<number, DType>([
  [VT.BOOL, "bool"], [VT.INT16, "int16"], [VT.INT32, "int32"], [VT.INT64, "int64"], [VT.FP16, "float16"],
  [VT.FP32, "float32"], [VT.FP64, "float64"], [VT.UINT8, "uint8"], [VT.INT8, "int8"], [VT.BF16, "bfloat16"],
]);

const TYPE_NAMES: Record<number, string> = { [VT.COMPLEX64]: "COMPLEX64", [VT.COMPLEX128]: "COMPLEX128" };

export function dtypeFromPaddle(code: number): DType | undefined {
  return PADDLE_DTYPES.get(code);
}

export function paddleTypeName(code: number): string {
  return TYPE_NAMES[code] ?? `VarType ${code}`;
}

/** A variable the program says is saved: its name, element type and dims (−1 = unknown). */
export interface ParamSpec {
  name: string;
  dtype: DType;
  dims: number[];
}

/** One decoded record and the offset just past it. */
export interface LoDTensorRecord {
  tensor: Tensor;
  end: number;
}

/**
 * Decode the LoDTensor record that starts at `offset`. `what` names the variable in messages
 * (e.g. "parameter 'conv1_weights' (record 3 of 213)").
 */
export function readLoDTensor(buf: Uint8Array, offset: number, file: string, what: string): LoDTensorRecord {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = offset;
  const need = (n: number, field: string) => {
    if (p + n > buf.byteLength) {
      throw new ModelFormatError(
        `truncated while reading ${what}: its ${field} needs ${n} bytes at offset ${p} but the file has ${buf.byteLength - p} left ` +
          `(the params file is cut short, or it belongs to another model)`,
        file,
      );
    }
  };
  need(4, "LoDTensor version");
  const lodVersion = dv.getUint32(p, true);
  p += 4;
  if (lodVersion !== 0) {
    throw new ModelFormatError(`${what}: LoDTensor version is ${lodVersion} at offset ${p - 4}, expected 0 (not a Paddle params file, or records out of step with the program)`, file);
  }
  need(8, "LoD level count");
  const levels = Number(dv.getBigUint64(p, true));
  p += 8;
  if (levels > 16) throw new ModelFormatError(`${what}: LoD level count ${levels} is not plausible (corrupt file?)`, file);
  for (let l = 0; l < levels; l++) {
    need(8, `LoD level ${l} size`);
    const size = Number(dv.getBigUint64(p, true));
    p += 8;
    need(size, `LoD level ${l}`);
    p += size;
  }
  need(4, "tensor version");
  const tVersion = dv.getUint32(p, true);
  p += 4;
  if (tVersion !== 0) throw new ModelFormatError(`${what}: tensor version is ${tVersion} at offset ${p - 4}, expected 0 (corrupt file?)`, file);
  need(4, "TensorDesc length");
  const descLen = dv.getInt32(p, true);
  p += 4;
  if (descLen < 0 || descLen > 1 << 20) throw new ModelFormatError(`${what}: TensorDesc length ${descLen} is not plausible (corrupt file?)`, file);
  need(descLen, "TensorDesc");
  let desc: PTensorDesc;
  try {
    desc = TensorDescT.decode(buf.subarray(p, p + descLen)) as unknown as PTensorDesc;
  } catch (e) {
    throw new ModelFormatError(`${what}: cannot decode its TensorDesc (${(e as Error).message})`, file);
  }
  p += descLen;
  const dtype = dtypeFromPaddle(desc.data_type ?? -1);
  if (!dtype) throw new ModelFormatError(`${what}: element type ${paddleTypeName(desc.data_type ?? -1)} is not supported`, file);
  const shape = (desc.dims ?? []).map(toNum);
  if (shape.some((d) => d < 0 || !Number.isSafeInteger(d))) throw new ModelFormatError(`${what}: stored dims [${shape.join(", ")}] are not valid`, file);
  const n = shapeSize(shape);
  const bytes = n * bytesPerElement(dtype);
  need(bytes, `data (${n} × ${dtype}, shape [${shape.join(", ")}])`);
  const data = allocData(dtype, n);
  // copy: the record's offset in the file is rarely aligned for the typed array
  new Uint8Array((data as Uint8Array).buffer, (data as Uint8Array).byteOffset, bytes).set(buf.subarray(p, p + bytes));
  p += bytes;
  return { tensor: new Tensor(dtype, shape, data), end: p };
}

function checkAgainst(spec: ParamSpec, t: Tensor, file: string, what: string): void {
  const ok = t.dtype === spec.dtype && t.shape.length === spec.dims.length && spec.dims.every((d, i) => d < 0 || d === t.shape[i]);
  if (!ok) {
    throw new ModelFormatError(
      `${what}: the file holds ${t.dtype} [${t.shape.join(", ")}] but the program declares ${spec.dtype} [${spec.dims.join(", ")}]; ` +
        `the params file does not match this model (use the params saved with it)`,
      file,
    );
  }
}

/** Read a combined params file: one record per spec, specs already in name-sorted order. */
export function readCombinedParams(buf: Uint8Array, specs: readonly ParamSpec[], file: string): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  let off = 0;
  specs.forEach((s, k) => {
    const what = `parameter '${s.name}' (record ${k + 1} of ${specs.length})`;
    if (off >= buf.byteLength) {
      throw new ModelFormatError(
        `truncated while reading ${what}: the file ends after ${k} records (${buf.byteLength} bytes) but the program saves ${specs.length} variables ` +
          `(the params file is cut short, or it belongs to another model)`,
        file,
      );
    }
    const r = readLoDTensor(buf, off, file, what);
    checkAgainst(s, r.tensor, file, what);
    out.set(s.name, r.tensor);
    off = r.end;
  });
  if (off !== buf.byteLength) {
    throw new ModelFormatError(
      `${buf.byteLength - off} bytes are left after the ${specs.length} parameters the program saves: the params file does not match this model ` +
        `(it has more or larger tensors; use the params saved with it)`,
      file,
    );
  }
  return out;
}

/** Read the old layout: one file per variable, named as the variable, in `dir`. */
export function readSeparateParams(dir: string, specs: readonly ParamSpec[]): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const s of specs) {
    const path = join(dir, s.name);
    if (!existsSync(path) || !statSync(path).isFile()) throw new MissingFileError(path, `parameter file for '${s.name}'`);
    const buf = readFileSync(path);
    const what = `parameter '${s.name}'`;
    const r = readLoDTensor(buf, 0, path, what);
    checkAgainst(s, r.tensor, path, what);
    if (r.end !== buf.byteLength) throw new ModelFormatError(`${what}: ${buf.byteLength - r.end} bytes are left after its record (not a parameter file?)`, path);
    out.set(s.name, r.tensor);
  }
  return out;
}
