import { allocData, isBig, type DType, type TensorData } from "./dtype.js";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "./half.js";

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a shape, in elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * A dense, row-major tensor. `data` is a typed array whose kind depends on `dtype`
 * (see DTypeStorage): float16/bfloat16 hold raw bits, int64 a BigInt64Array, bool a Uint8Array.
 */
export class Tensor {
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly data: TensorData,
  ) {
    const n = shapeSize(shape);
    if (data.length !== n) {
      throw new RangeError(`tensor data has ${data.length} elements but shape [${shape.join(",")}] needs ${n}`);
    }
  }

  get size(): number {
    return this.data.length;
  }
  get rank(): number {
    return this.shape.length;
  }

  static zeros(dtype: DType, shape: readonly number[]): Tensor {
    return new Tensor(dtype, shape, allocData(dtype, shapeSize(shape)));
  }

  static f32(shape: readonly number[], values?: ArrayLike<number>): Tensor {
    const d = new Float32Array(shapeSize(shape));
    if (values) d.set(values);
    return new Tensor("float32", shape, d);
  }

  static i64(shape: readonly number[], values: ArrayLike<number | bigint>): Tensor {
    const d = new BigInt64Array(shapeSize(shape));
    for (let i = 0; i < d.length; i++) d[i] = BigInt(values[i]!);
    return new Tensor("int64", shape, d);
  }

  /** Build a tensor of `dtype` from plain numbers (converted, rounded, wrapped as the dtype does). */
  static fromNumbers(dtype: DType, shape: readonly number[], values: ArrayLike<number>): Tensor {
    const t = Tensor.zeros(dtype, shape);
    t.setFromNumbers(values);
    return t;
  }

  /** Values as float64 numbers (float16/bfloat16 decoded, int64 converted). */
  toNumbers(): Float64Array {
    const n = this.size;
    const out = new Float64Array(n);
    const d = this.data;
    if (this.dtype === "float16") {
      const u = d as Uint16Array;
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(u[i]!);
    } else if (this.dtype === "bfloat16") {
      const u = d as Uint16Array;
      for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(u[i]!);
    } else if (isBig(this.dtype)) {
      const b = d as BigInt64Array;
      for (let i = 0; i < n; i++) out[i] = Number(b[i]!);
    } else if (this.dtype === "string") {
      throw new TypeError("string tensor has no numeric values");
    } else {
      out.set(d as ArrayLike<number>);
    }
    return out;
  }

  /** Values as float32 (shares storage when already float32). */
  toFloat32(): Float32Array {
    if (this.dtype === "float32") return this.data as Float32Array;
    return Float32Array.from(this.toNumbers());
  }

  /** Values as plain JS numbers array: handy for small int64 shape tensors. */
  toArray(): number[] {
    return Array.from(this.toNumbers());
  }

  /** Write numbers into this tensor, converting to its dtype. */
  setFromNumbers(values: ArrayLike<number>): void {
    const n = this.size;
    const d = this.data;
    switch (this.dtype) {
      case "float16": {
        const u = d as Uint16Array;
        for (let i = 0; i < n; i++) u[i] = f32ToF16Bits(values[i]!);
        return;
      }
      case "bfloat16": {
        const u = d as Uint16Array;
        for (let i = 0; i < n; i++) u[i] = f32ToBf16Bits(values[i]!);
        return;
      }
      case "int64": case "uint64": {
        const b = d as BigInt64Array;
        for (let i = 0; i < n; i++) {
          const v = values[i]!;
          b[i] = BigInt(Number.isFinite(v) ? Math.trunc(v) : 0);
        }
        return;
      }
      case "bool": {
        const u = d as Uint8Array;
        for (let i = 0; i < n; i++) u[i] = values[i] ? 1 : 0;
        return;
      }
      case "string":
        throw new TypeError("cannot set numbers into a string tensor");
      default: {
        const a = d as Float32Array;
        if (this.dtype === "float32" || this.dtype === "float64") {
          a.set(values);
        } else if (this.dtype === "int4") {
          for (let i = 0; i < n; i++) a[i] = (((Math.trunc(values[i]!) & 0xf) ^ 8) - 8);
        } else if (this.dtype === "uint4") {
          for (let i = 0; i < n; i++) a[i] = Math.trunc(values[i]!) & 0xf;
        } else {
          // typed arrays wrap out-of-range integers modulo 2^bits, as C casts do
          for (let i = 0; i < n; i++) a[i] = Math.trunc(values[i]!);
        }
      }
    }
  }

  /** Same data, new shape (element count must match). */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.dtype, shape, this.data);
  }

  clone(): Tensor {
    const d = this.data;
    return new Tensor(this.dtype, [...this.shape], Array.isArray(d) ? [...d] : (d.slice() as TensorData));
  }

  /** A scalar number (first element). */
  scalar(): number {
    return this.toNumbers()[0]!;
  }
}
