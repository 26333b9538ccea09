/** float16 / bfloat16 <-> float32 bit conversions (round to nearest even). */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f16BitsToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 5.960464477539063e-8; // 2^-24
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function f32ToF16Bits(v: number): number {
  if (Math.fround(v) !== v && v === v) return toHalfBits(v, false);
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  return sign | r;
}

export function bf16BitsToF32(b: number): number {
  u32[0] = b << 16;
  return f32[0]!;
}

export function f32ToBf16Bits(v: number): number {
  if (Math.fround(v) !== v && v === v) return toHalfBits(v, true);
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  const r = x + 0x7fff + ((x >>> 16) & 1);
  return (r >>> 16) & 0xffff;
}

/** Round a float32 value to the nearest float16 value (as float32). */
export function roundToF16(v: number): number {
  return f16BitsToF32(f32ToF16Bits(v));
}
export function roundToBf16(v: number): number {
  return bf16BitsToF32(f32ToBf16Bits(v));
}

/**
 * float16 (bf = false) or bfloat16 (bf = true) bits of a float64 value, rounded once to nearest
 * even. Used for values that are not float32 already, so a float64 is never rounded twice.
 */
export function toHalfBits(v: number, bf: boolean): number {
  const M = bf ? 7 : 10, bias = bf ? 127 : 15;
  const sign = v < 0 || Object.is(v, -0) ? 1 << (M + (bf ? 8 : 5)) : 0;
  const inf = (bf ? 0xff : 0x1f) << M;
  if (v !== v) return bf ? 0x7fc0 : 0x7e00;
  const a = Math.abs(v);
  if (a === Infinity) return sign | inf;
  const emin = 1 - bias;
  if (a < 2 ** emin) return sign | rintPos(a * 2 ** (M - emin)); // subnormal (may round up to the smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let q = rintPos(a * 2 ** (M - e));
  if (q === 2 ** (M + 1)) {
    q = 2 ** M;
    e++;
  }
  if (e > bias) return sign | inf;
  return sign | ((e + bias) << M) | (q - 2 ** M);
}

function rintPos(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

