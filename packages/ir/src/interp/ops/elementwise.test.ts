import { describe, expect, it } from "vitest";
import { Tensor } from "../../tensor.js";
import { runAll, run, vals, int, flt, str, T } from "./test-helpers.js";
import { erf, roundEven } from "./elementwise.js";

const cast = (x: Tensor, to: number) => run("Cast", [x], { to: int(to) });

function close(got: number[], want: number[], tol = 1e-6): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    const w = want[i]!;
    if (Number.isNaN(w)) expect(g).toBeNaN();
    else if (Math.abs(g - w) > tol * (1 + Math.abs(w))) throw new Error(`element ${i}: got ${g}, want ${w}`);
  });
}

describe("scalar helpers", () => {
  it("erf is accurate to ~1e-15 across its range", () => {
    close([erf(0.5), erf(-1), erf(3), erf(1e-8), erf(10), erf(-10)], [0.5204998778130465, -0.8427007929497149, 0.9999779095030014, 1.1283791670955126e-8, 1, -1], 1e-15);
    expect(erf(NaN)).toBeNaN();
  });
  it("roundEven rounds ties to even", () => {
    expect([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999, 3.5000001].map(roundEven)).toEqual([0, 2, 2, -0, -2, 2, 4]);
  });
});

describe("arithmetic", () => {
  it("integer Div truncates toward zero (int32 and int64)", () => {
    expect(vals(run("Div", [T("int32", [4], [-7, 7, -7, 7]), T("int32", [4], [2, -2, -2, 2])]))).toEqual([-3, -3, 3, 3]);
    const y = run("Div", [Tensor.i64([3], [-7, 9007199254740993n, 7]), Tensor.i64([3], [2, 1, -2])]);
    expect(y.dtype).toBe("int64");
    expect(Array.from(y.data as BigInt64Array)).toEqual([-3n, 9007199254740993n, -3n]);
  });
  it("integer arithmetic wraps like the C types", () => {
    expect(vals(run("Mul", [T("int32", [2], [65536, 2147483647]), T("int32", [2], [65536, 2])]))).toEqual([0, -2]);
    expect(vals(run("Add", [T("int8", [2], [127, -128]), T("int8", [2], [1, -1])]))).toEqual([-128, 127]);
    expect(vals(run("Sub", [T("uint8", [1], [3]), T("uint8", [1], [5])]))).toEqual([254]);
  });
  it("Mod: sign of the divisor for integers, C fmod with fmod=1", () => {
    const a = T("int32", [4], [-7, 7, -7, 7]), b = T("int32", [4], [3, -3, -3, 3]);
    expect(vals(run("Mod", [a, b]))).toEqual([2, -2, -1, 1]);
    expect(vals(run("Mod", [a, b], { fmod: int(1) }))).toEqual([-1, 1, -1, 1]);
    expect(vals(run("Mod", [Tensor.f32([2], [-7.5, 7.5]), Tensor.f32([2], [2, -2])], { fmod: int(1) }))).toEqual([-1.5, 1.5]);
  });
  it("Pow keeps the base dtype with exponents of other types", () => {
    const y = run("Pow", [T("int32", [3], [2, 3, 10]), Tensor.f32([3], [0.5, 2, -1])]);
    expect(y.dtype).toBe("int32");
    expect(vals(y)).toEqual([1, 9, 0]);
    const z = run("Pow", [Tensor.f32([3], [2, -2, 4]), Tensor.i64([3], [3, 2, -1])]);
    expect(z.dtype).toBe("float32");
    expect(vals(z)).toEqual([8, 4, 0.25]);
    expect(vals(run("Pow", [Tensor.i64([2], [3, 2]), T("int32", [2], [39, 62])]))).toEqual([Number(3n ** 39n), 2 ** 62]);
  });
  it("float16 results are rounded to float16", () => {
    const y = run("Add", [T("float16", [2], [1000, 1]), T("float16", [2], [0.3, 2 ** -11])]);
    expect(y.dtype).toBe("float16");
    expect(vals(y)).toEqual([1000.5, 1]); // 1000.3 -> spacing 0.5; 1 + 2^-11 is a tie -> even
  });
  it("broadcasts in both directions and variadic Sum/Mean/Max", () => {
    const a = Tensor.f32([2, 1], [1, 2]), b = Tensor.f32([3], [10, 20, 30]);
    const y = run("Add", [a, b]);
    expect(y.shape).toEqual([2, 3]);
    expect(vals(y)).toEqual([11, 21, 31, 12, 22, 32]);
    expect(vals(run("Sum", [a, b, Tensor.f32([], [100])]))).toEqual([111, 121, 131, 112, 122, 132]);
    expect(vals(run("Mean", [Tensor.f32([2], [1, 2]), Tensor.f32([2], [3, 6])]))).toEqual([2, 4]);
    expect(vals(run("Max", [a, b, Tensor.f32([1], [15])]))).toEqual([15, 20, 30, 15, 20, 30]);
    expect(vals(run("Max", [Tensor.f32([2], [NaN, 1]), Tensor.f32([2], [0, 2])]))).toEqual([NaN, 2]);
  });
  it("PRelu broadcasts the slope", () => {
    const y = run("PRelu", [Tensor.f32([2, 2], [-1, 2, -3, 4]), Tensor.f32([2, 1], [0.5, 0.25])]);
    expect(vals(y)).toEqual([-0.5, 2, -0.75, 4]);
  });
  it("BitShift wraps to the width of the type", () => {
    expect(vals(run("BitShift", [T("uint8", [2], [200, 3]), T("uint8", [2], [1, 9])], { direction: str("LEFT") }))).toEqual([144, 0]);
    expect(vals(run("BitShift", [T("uint32", [2], [4294967295, 8]), T("uint32", [2], [31, 2])], { direction: str("RIGHT") }))).toEqual([1, 2]);
  });
});

describe("activations and unary math", () => {
  const x = Tensor.f32([3], [-2, 0, 1]);
  it("Gelu exact and tanh", () => {
    close(vals(run("Gelu", [x], {}, 20)), [-0.04550026389635842, 0, 0.8413447460685429]);
    close(vals(run("Gelu", [Tensor.f32([1], [1])], { approximate: str("tanh") }, 20)), [0.8411919906082768]);
  });
  it("Mish, Celu, Selu, Elu, HardSwish, Softplus", () => {
    close(vals(run("Mish", [Tensor.f32([2], [1, -1])], {}, 18)), [0.8650983882673103, -0.30340146137410895]);
    close(vals(run("Celu", [Tensor.f32([2], [-1, 2])], { alpha: flt(0.5) })), [-0.43233235838169365, 2]);
    close(vals(run("Selu", [Tensor.f32([2], [-1, 2])])), [-1.1113307412864784, 2 * 1.05070102214813232421875]);
    close(vals(run("Elu", [Tensor.f32([2], [-1, 2])])), [-0.6321205588285577, 2]);
    close(vals(run("HardSwish", [Tensor.f32([4], [1, -1, 4, -4])])), [2 / 3, -1 / 3, 4, 0]);
    close(vals(run("Softplus", [Tensor.f32([3], [-100, 1, 100])])), [3.720075976020836e-44, 1.3132616875182228, 100]);
  });
  it("Sigmoid and HardSigmoid saturate cleanly", () => {
    close(vals(run("Sigmoid", [Tensor.f32([3], [-1000, 0, 1000])])), [0, 0.5, 1]);
    close(vals(run("HardSigmoid", [Tensor.f32([3], [-5, 0, 1])], { alpha: flt(0.25), beta: flt(0.5) })), [0, 0.5, 0.75]);
  });
  it("Round, Sign, Relu, Abs, Neg on ints and floats", () => {
    expect(vals(run("Round", [Tensor.f32([6], [0.5, 1.5, 2.5, -0.5, -2.5, 2.6])]))).toEqual([0, 2, 2, -0, -2, 3]);
    expect(vals(run("Sign", [T("int32", [3], [-5, 0, 7])]))).toEqual([-1, 0, 1]);
    expect(vals(run("Relu", [T("int8", [3], [-5, 0, 7])], {}, 14))).toEqual([0, 0, 7]);
    expect(Array.from(run("Abs", [Tensor.i64([2], [-9007199254740993n, 3])]).data as BigInt64Array)).toEqual([9007199254740993n, 3n]);
    expect(vals(run("Neg", [T("int8", [2], [-128, 5])]))).toEqual([-128, -5]);
  });
  it("Clip: attributes before opset 11, inputs after, any dtype", () => {
    const v = Tensor.f32([4], [-3, -1, 1, 3]);
    expect(vals(run("Clip", [v], { min: flt(-2), max: flt(2) }, 6))).toEqual([-2, -1, 1, 2]);
    expect(vals(run("Clip", [v, undefined, Tensor.f32([], [0])], {}, 13))).toEqual([-3, -1, 0, 0]);
    expect(vals(run("Clip", [T("int32", [3], [-5, 2, 9]), T("int32", [], [3]), T("int32", [], [1])], {}, 13))).toEqual([1, 1, 1]);
    expect(Array.from(run("Clip", [Tensor.i64([2], [-5, 9]), Tensor.i64([], [0])], {}, 13).data as BigInt64Array)).toEqual([0n, 9n]);
  });
});

describe("Softmax family: opset 11 vs 13 axis semantics", () => {
  const x = Tensor.f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
  const sm4 = [0.03205860328008499, 0.08714431874203257, 0.23688281808991016, 0.6439142598879724];
  const a = 0.11920292202211757, b = 0.8807970779778825;
  it("opset < 13 flattens to 2-D around axis (default 1)", () => {
    close(vals(run("Softmax", [x], {}, 11)), [...sm4, ...sm4]);
    close(vals(run("Softmax", [x], { axis: int(1) }, 11)), [...sm4, ...sm4]);
    close(vals(run("Softmax", [x], { axis: int(0) }, 11)), vals(run("Softmax", [x.reshape([1, 8])], { axis: int(-1) }, 13)));
    close(vals(run("LogSoftmax", [x], {}, 11)), [...sm4, ...sm4].map(Math.log));
    expect(vals(run("Hardmax", [x], {}, 11))).toEqual([0, 0, 0, 1, 0, 0, 0, 1]);
  });
  it("opset >= 13 works on one axis (default -1)", () => {
    close(vals(run("Softmax", [x], { axis: int(1) }, 13)), [a, a, b, b, a, a, b, b]);
    const p = 0.2689414213699951, q = 0.7310585786300049;
    close(vals(run("Softmax", [x], {}, 13)), [p, q, p, q, p, q, p, q]);
    expect(vals(run("Hardmax", [x], { axis: int(1) }, 13))).toEqual([0, 0, 1, 1, 0, 0, 1, 1]);
  });
  it("is stable for large inputs and Hardmax picks the first maximum", () => {
    close(vals(run("Softmax", [Tensor.f32([2], [1000, 1000])], {}, 13)), [0.5, 0.5]);
    close(vals(run("LogSoftmax", [Tensor.f32([2], [1000, 1000])], {}, 13)), [-Math.LN2, -Math.LN2]);
    expect(vals(run("Hardmax", [Tensor.f32([3], [2, 5, 5])], {}, 13))).toEqual([0, 1, 0]);
  });
});

describe("comparisons, logic, Where", () => {
  it("compares int64 exactly and strings", () => {
    const y = run("Equal", [Tensor.i64([2], [9007199254740993n, 1]), Tensor.i64([1], [9007199254740992n])]);
    expect(y.dtype).toBe("bool");
    expect(vals(y)).toEqual([0, 0]);
    expect(vals(run("Equal", [new Tensor("string", [2], ["a", "b"]), new Tensor("string", [], ["b"])], {}, 19))).toEqual([0, 1]);
    expect(vals(run("GreaterOrEqual", [Tensor.f32([3], [1, 2, NaN]), Tensor.f32([], [2])]))).toEqual([0, 1, 0]);
  });
  it("logic ops broadcast", () => {
    const a = T("bool", [2, 2], [1, 1, 0, 0]), b = T("bool", [2], [1, 0]);
    expect(vals(run("And", [a, b]))).toEqual([1, 0, 0, 0]);
    expect(vals(run("Or", [a, b]))).toEqual([1, 1, 1, 0]);
    expect(vals(run("Xor", [a, b]))).toEqual([0, 1, 1, 0]);
    expect(vals(run("Not", [b]))).toEqual([0, 1]);
  });
  it("Where broadcasts three ways for any dtype", () => {
    const c = T("bool", [2, 1], [1, 0]);
    const y = run("Where", [c, Tensor.i64([3], [1, 2, 3]), Tensor.i64([], [-1])]);
    expect(y.shape).toEqual([2, 3]);
    expect(Array.from(y.data as BigInt64Array)).toEqual([1n, 2n, 3n, -1n, -1n, -1n]);
    const s = run("Where", [T("bool", [2], [0, 1]), new Tensor("string", [2], ["a", "b"]), new Tensor("string", [], ["z"])]);
    expect(s.data).toEqual(["z", "b"]);
  });
  it("IsNaN and IsInf with detect flags", () => {
    const v = Tensor.f32([4], [Infinity, -Infinity, NaN, 0]);
    expect(vals(run("IsNaN", [v]))).toEqual([0, 0, 1, 0]);
    expect(vals(run("IsInf", [v]))).toEqual([1, 1, 0, 0]);
    expect(vals(run("IsInf", [v], { detect_positive: int(0) }))).toEqual([0, 1, 0, 0]);
  });
});

describe("Cast", () => {
  it("float -> int truncates and saturates (NaN -> 0)", () => {
    const x = Tensor.f32([7], [300.7, -300.2, 127.9, -128.9, 1.9, -1.9, NaN]);
    const y = cast(x, 3); // int8
    expect(y.dtype).toBe("int8");
    expect(vals(y)).toEqual([127, -128, 127, -128, 1, -1, 0]);
    expect(vals(cast(Tensor.f32([3], [-5, 255.9, 256]), 2))).toEqual([0, 255, 255]); // uint8
    const big = cast(Tensor.f32([4], [1e19, -1e19, NaN, -2.7]), 7); // int64
    expect(Array.from(big.data as BigInt64Array)).toEqual([9223372036854775807n, -9223372036854775808n, 0n, -2n]);
  });
  it("int -> narrower int discards high bits", () => {
    expect(vals(cast(T("int32", [3], [200, -200, 256]), 3))).toEqual([-56, 56, 0]);
    expect(vals(cast(Tensor.i64([2], [4294967301n, 2147483648n]), 6))).toEqual([5, -2147483648]); // int32
    expect(Array.from(cast(T("int32", [1], [-1]), 13).data as BigUint64Array)).toEqual([18446744073709551615n]); // uint64
  });
  it("bool, float16 and bfloat16 rounding", () => {
    expect(vals(cast(Tensor.f32([4], [0, -0, 0.1, NaN]), 9))).toEqual([0, 0, 1, 1]);
    expect(vals(cast(new Tensor("float64", [3], Float64Array.of(65520, 1 / 3, 65519)), 10))).toEqual([Infinity, 0.333251953125, 65504]);
    expect(vals(cast(Tensor.f32([2], [1.00390625, 1.01171875]), 16))).toEqual([1, 1.015625]); // ties to even
    expect(vals(cast(T("bfloat16", [1], [1.5]), 1))).toEqual([1.5]);
  });
  it("string <-> numbers", () => {
    const s = new Tensor("string", [6], ["1e-5", "INF", "-inf", "NaN", " 3.5 ", "+INF"]);
    close(vals(cast(s, 1)), [Math.fround(1e-5), Infinity, -Infinity, NaN, 3.5, Infinity]);
    expect(Array.from(cast(new Tensor("string", [1], ["9007199254740993"]), 7).data as BigInt64Array)).toEqual([9007199254740993n]);
    const f = cast(Tensor.f32([6], [0.1, 3, 1e-5, 1.5e20, -Infinity, 0.039187793]), 8);
    expect(f.data).toEqual(["0.1", "3.0", "1e-05", "1.5e+20", "-INF", "0.039187793"]);
    expect(cast(Tensor.i64([2], [-3, 12345678901234567n]), 8).data).toEqual(["-3", "12345678901234567"]);
  });
  it("CastLike takes the dtype of its second input", () => {
    const y = run("CastLike", [Tensor.f32([2], [1.5, -2.5]), T("int16", [0], [])], {}, 15);
    expect(y.dtype).toBe("int16");
    expect(vals(y)).toEqual([1, -2]);
  });
});

describe("Identity and Dropout", () => {
  it("Dropout in inference is identity with an all-true mask", () => {
    const x = Tensor.f32([3], [1, 2, 3]);
    const [y, m] = runAll("Dropout", [x, Tensor.f32([], [0.5])], {}, 13, 2);
    expect(y).toBe(x);
    expect(m!.dtype).toBe("bool");
    expect(vals(m!)).toEqual([1, 1, 1]);
    const [, m7] = runAll("Dropout", [x], { ratio: flt(0.3) }, 7, 2);
    expect(m7!.dtype).toBe("float32"); // before opset 10 the mask has the input's type
    expect(vals(m7!)).toEqual([1, 1, 1]);
  });
  it("training mode scales kept values by 1/(1-ratio)", () => {
    const x = Tensor.f32([1000], new Array(1000).fill(1));
    const [y, m] = runAll("Dropout", [x, Tensor.f32([], [0.75]), T("bool", [], [1])], { seed: int(3) }, 13, 2);
    const yv = vals(y!), mv = vals(m!);
    yv.forEach((v, i) => expect(v).toBe(mv[i] ? 4 : 0));
    const kept = mv.reduce((s, v) => s + v, 0);
    expect(kept).toBeGreaterThan(180);
    expect(kept).toBeLessThan(320);
  });
});
