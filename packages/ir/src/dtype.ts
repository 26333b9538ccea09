/** Element types of tensors. Names follow numpy where numpy has one. */
export type DType =
  | "float32"
  | "float16"
  | "bfloat16"
  | "float64"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool"
  | "int4"
  | "uint4"
  | "string";

/** Storage of each dtype. float16/bfloat16 keep their raw bits; int4/uint4 keep one value per byte. */
export interface DTypeStorage {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  float64: Float64Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
  int4: Int8Array;
  uint4: Uint8Array;
  string: string[];
}

export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;
export type BigArray = BigInt64Array | BigUint64Array;
export type TensorData = NumericArray | BigArray | string[];

export const ALL_DTYPES: readonly DType[] = [
  "float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "uint16",
  "int32", "uint32", "int64", "uint64", "bool", "int4", "uint4", "string",
];

/** ONNX TensorProto.DataType numbers (onnx.proto). */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9,
  float16: 10, float64: 11, uint32: 12, uint64: 13, bfloat16: 16, uint4: 21, int4: 22,
};
const FROM_ONNX = new Map<number, DType>(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, k as DType]));

export function dtypeFromOnnx(code: number): DType | undefined {
  return FROM_ONNX.get(code);
}

/** Bytes per element in memory (int4/uint4: one byte each here; packed only in files). */
export function bytesPerElement(dt: DType): number {
  switch (dt) {
    case "float64": case "int64": case "uint64": return 8;
    case "float32": case "int32": case "uint32": return 4;
    case "float16": case "bfloat16": case "int16": case "uint16": return 2;
    case "string": return 0;
    default: return 1;
  }
}

export function isFloat(dt: DType): boolean {
  return dt === "float32" || dt === "float16" || dt === "bfloat16" || dt === "float64";
}
export function isInteger(dt: DType): boolean {
  return !isFloat(dt) && dt !== "bool" && dt !== "string";
}
export function isBig(dt: DType): dt is "int64" | "uint64" {
  return dt === "int64" || dt === "uint64";
}

/** Allocate zeroed storage for `n` elements of `dt`. */
export function allocData(dt: DType, n: number): TensorData {
  switch (dt) {
    case "float32": return new Float32Array(n);
    case "float64": return new Float64Array(n);
    case "float16": case "bfloat16": case "uint16": return new Uint16Array(n);
    case "int8": case "int4": return new Int8Array(n);
    case "uint8": case "uint4": case "bool": return new Uint8Array(n);
    case "int16": return new Int16Array(n);
    case "int32": return new Int32Array(n);
    case "uint32": return new Uint32Array(n);
    case "int64": return new BigInt64Array(n);
    case "uint64": return new BigUint64Array(n);
    case "string": return new Array<string>(n).fill("");
  }
}

/** Integer range of an integer dtype (int4/uint4 included). */
export function intRange(dt: DType): [number, number] {
  switch (dt) {
    case "int4": return [-8, 7];
    case "uint4": return [0, 15];
    case "int8": return [-128, 127];
    case "uint8": return [0, 255];
    case "int16": return [-32768, 32767];
    case "uint16": return [0, 65535];
    case "int32": return [-2147483648, 2147483647];
    case "uint32": return [0, 4294967295];
    case "bool": return [0, 1];
    default: return [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
  }
}
