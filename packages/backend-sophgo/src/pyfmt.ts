/**
 * Number formatting the way TPU-MLIR's Python tools print numbers, so that tables written by q
 * are byte-compatible with tables written by TPU-MLIR.
 *
 * - `formatFixed(x, 7)` is Python's `'{:.7f}'.format(x)` / `'%.7f' % x`: the exact binary value of
 *   the double rounded half-to-even at the 7th decimal (JS `toFixed` rounds exact ties up, and
 *   drops the sign of negative values that round to zero; Python keeps `-0.0000000`).
 * - `formatRepr(x)` is Python's `repr(float)`: shortest round-trip digits, scientific notation
 *   when the decimal exponent is < -4 or >= 16, exponent with at least two digits.
 */

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const LITTLE = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** |x| = mantissa * 2^exponent with an integer mantissa (x finite). */
function decompose(x: number): { mantissa: bigint; exponent: number } {
  F64[0] = x;
  const lo = U32[LITTLE ? 0 : 1]!;
  const hi = U32[LITTLE ? 1 : 0]!;
  const biased = (hi >>> 20) & 0x7ff;
  const frac = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (biased === 0) return { mantissa: frac, exponent: -1074 };
  return { mantissa: frac | (1n << 52n), exponent: biased - 1075 };
}

/** Python `'%.{digits}f' % x`. */
export function formatFixed(x: number, digits = 7): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const neg = x < 0 || Object.is(x, -0);
  const { mantissa, exponent } = decompose(x);
  const scale = 10n ** BigInt(digits);
  let q: bigint;
  if (exponent >= 0) {
    q = (mantissa << BigInt(exponent)) * scale;
  } else {
    const num = mantissa * scale;
    const den = 1n << BigInt(-exponent);
    q = num / den;
    const twice = (num % den) * 2n;
    if (twice > den || (twice === den && (q & 1n) === 1n)) q += 1n;
  }
  let s = q.toString();
  if (digits > 0) {
    s = s.padStart(digits + 1, "0");
    s = `${s.slice(0, s.length - digits)}.${s.slice(s.length - digits)}`;
  }
  return (neg ? "-" : "") + s;
}

/** Shortest round-trip decimal digits and decimal exponent of a finite, non-zero |x|. */
function shortest(x: number): { digits: string; exp: number } {
  const e = Math.abs(x).toExponential(); // shortest round-trip digits, "d.ddde±X"
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(e)!;
  return { digits: m[1]! + (m[2] ?? ""), exp: Number(m[3]) };
}

/** Python `repr(x)` for a float. */
export function formatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  if (x === 0) return `${sign}0.0`;
  const { digits, exp } = shortest(x);
  if (exp < -4 || exp >= 16) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const es = Math.abs(exp).toString().padStart(2, "0");
    return `${sign}${mant}e${exp < 0 ? "-" : "+"}${es}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/**
 * A decimal number as Python's `float()` accepts it (also `inf`, `nan`, `1e+05`). Returns
 * undefined for anything else, so callers can name the bad field.
 */
export function parsePyFloat(s: string): number | undefined {
  const t = s.trim();
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  const l = t.toLowerCase();
  if (/^[-+]?(inf|infinity)$/.test(l)) return l.startsWith("-") ? -Infinity : Infinity;
  if (/^[-+]?nan$/.test(l)) return NaN;
  return undefined;
}
