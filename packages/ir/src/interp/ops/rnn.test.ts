import { describe, expect, it } from "vitest";
import { Node, type AttrValue } from "../../graph.js";
import { Tensor, shapeSize } from "../../tensor.js";
import { kernels } from "./rnn.js";

function run(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, AttrValue>): Tensor[] {
  const n = new Node({ opType: op, inputs: inputs.map((t, i) => (t ? `i${i}` : "")), outputs: ["Y", "Y_h", "Y_c"], attrs });
  return kernels[op]!(inputs, n, { opset: 14, runSubgraph: () => { throw new Error("no subgraphs"); } });
}
const int = (value: number): AttrValue => ({ type: "int", value });
const str = (value: string): AttrValue => ({ type: "string", value });
const vals = (t: Tensor) => Array.from(t.toNumbers());
const sig = (x: number) => 1 / (1 + Math.exp(-x));
function expectClose(got: number[], want: number[], tol = 1e-6): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, k) => {
    if (Math.abs(g - want[k]!) > tol) throw new Error(`element ${k}: got ${g}, want ${want[k]}`);
  });
}
let seed = 99;
function rnd(shape: number[]): Tensor {
  return Tensor.f32(shape, Array.from({ length: shapeSize(shape) }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  }));
}
/** LSTM weights for hidden 1, input 1: gates in ONNX order i, o, f, c. */
const w4 = (i: number, o: number, f: number, c: number) => Tensor.f32([1, 4, 1], [i, o, f, c]);

describe("LSTM", () => {
  it("two steps, worked by hand", () => {
    // only the cell input is driven: c~ = tanh(x + h); i = o = f = sigmoid(0) = 0.5
    const X = Tensor.f32([2, 1, 1], [1, 2]);
    const [Y, Yh, Yc] = run("LSTM", [X, w4(0, 0, 0, 1), w4(0, 0, 0, 1)], { hidden_size: int(1) });
    const c1 = 0.5 * Math.tanh(1), h1 = 0.5 * Math.tanh(c1);
    const c2 = 0.5 * c1 + 0.5 * Math.tanh(2 + h1), h2 = 0.5 * Math.tanh(c2);
    expect(Y!.shape).toEqual([2, 1, 1, 1]);
    expectClose(vals(Y!), [h1, h2]);
    expectClose(vals(Yh!), [h2]);
    expectClose(vals(Yc!), [c2]);
  });

  it("peepholes read C(t-1) for i and f, C(t) for o", () => {
    const X = Tensor.f32([1, 1, 1], [1]);
    const P = Tensor.f32([1, 3], [1, 2, -1]);
    const c0 = Tensor.f32([1, 1, 1], [1]);
    const [, Yh, Yc] = run("LSTM", [X, w4(0, 0, 0, 1), w4(0, 0, 0, 0), undefined, undefined, undefined, c0, P], { hidden_size: int(1) });
    const i = sig(1), f = sig(-1), c = f * 1 + i * Math.tanh(1), o = sig(2 * c);
    expectClose(vals(Yc!), [c]);
    expectClose(vals(Yh!), [o * Math.tanh(c)]);
  });

  it("input_forget couples f = 1 - i", () => {
    const X = Tensor.f32([1, 1, 1], [1]);
    const c0 = Tensor.f32([1, 1, 1], [1]);
    const [, , Yc] = run("LSTM", [X, w4(1, 0, 100, 1), w4(0, 0, 0, 0), undefined, undefined, undefined, c0], { hidden_size: int(1), input_forget: int(1) });
    expectClose(vals(Yc!), [(1 - sig(1)) * 1 + sig(1) * Math.tanh(1)]);
  });

  it("clip bounds the inputs of the activations, not the cell state", () => {
    const X = Tensor.f32([1, 1, 1], [2]);
    const c0 = Tensor.f32([1, 1, 1], [3]);
    const [, Yh, Yc] = run("LSTM", [X, w4(0, 0, 0, 1), w4(0, 0, 0, 0), undefined, undefined, undefined, c0], { hidden_size: int(1), clip: { type: "float", value: 0.5 } });
    const c = 0.5 * 3 + 0.5 * Math.tanh(0.5);
    expectClose(vals(Yc!), [c]);
    expectClose(vals(Yh!), [0.5 * Math.tanh(0.5)]);
  });

  it("activation_alpha / beta are consumed in order by the activations that take them", () => {
    const X = Tensor.f32([1, 1, 1], [-1]);
    const [, Yh, Yc] = run("LSTM", [X, w4(0, 0, 0, 1), w4(0, 0, 0, 0)], {
      hidden_size: int(1),
      activations: { type: "strings", value: ["HardSigmoid", "Tanh", "LeakyRelu"] },
      activation_alpha: { type: "floats", value: [0.3, 0.1] },
      activation_beta: { type: "floats", value: [0.6] },
    });
    // i = o = f = hardsigmoid(0) = 0.6
    const c = 0.6 * Math.tanh(-1);
    expectClose(vals(Yc!), [c]);
    expectClose(vals(Yh!), [0.6 * 0.1 * c]);
  });

  it("reverse equals forward on the reversed sequence; bidirectional stacks both", () => {
    const S = 4, B = 2, I = 3, H = 5;
    const X = rnd([S, B, I]), W = rnd([1, 4 * H, I]), R = rnd([1, 4 * H, H]), Bias = rnd([1, 8 * H]);
    const xr = new Float32Array(X.size);
    for (let s = 0; s < S; s++) xr.set((X.data as Float32Array).subarray((S - 1 - s) * B * I, (S - s) * B * I), s * B * I);
    const [Yf] = run("LSTM", [Tensor.f32([S, B, I], xr), W, R, Bias], { hidden_size: int(H) });
    const [Yr, Yhr] = run("LSTM", [X, W, R, Bias], { hidden_size: int(H), direction: str("reverse") });
    const yf = vals(Yf!), yr = vals(Yr!);
    for (let s = 0; s < S; s++) expectClose(yr.slice(s * B * H, (s + 1) * B * H), yf.slice((S - 1 - s) * B * H, (S - s) * B * H));
    expectClose(vals(Yhr!), yf.slice((S - 1) * B * H));
    // bidirectional with the same weights in both directions
    const W2 = Tensor.f32([2, 4 * H, I], [...vals(W), ...vals(W)]);
    const R2 = Tensor.f32([2, 4 * H, H], [...vals(R), ...vals(R)]);
    const B2 = Tensor.f32([2, 8 * H], [...vals(Bias), ...vals(Bias)]);
    const [Yb, Yhb] = run("LSTM", [X, W2, R2, B2], { hidden_size: int(H), direction: str("bidirectional") });
    const [Yfw] = run("LSTM", [X, W, R, Bias], { hidden_size: int(H) });
    expect(Yb!.shape).toEqual([S, 2, B, H]);
    const yb = vals(Yb!), yfw = vals(Yfw!);
    for (let s = 0; s < S; s++) {
      expectClose(yb.slice((s * 2) * B * H, (s * 2 + 1) * B * H), yfw.slice(s * B * H, (s + 1) * B * H));
      expectClose(yb.slice((s * 2 + 1) * B * H, (s * 2 + 2) * B * H), yr.slice(s * B * H, (s + 1) * B * H));
    }
    expectClose(vals(Yhb!).slice(B * H), vals(Yhr!));
  });

  it("sequence_lens: padded steps give zeros, Y_h is the last real step (both directions)", () => {
    const S = 3, I = 2, H = 3;
    const X = rnd([S, 2, I]), W = rnd([2, 4 * H, I]), R = rnd([2, 4 * H, H]);
    const lens = Tensor.fromNumbers("int32", [2], [3, 1]);
    const [Y, Yh] = run("LSTM", [X, W, R, undefined, lens], { hidden_size: int(H), direction: str("bidirectional") });
    const y = vals(Y!);
    // batch 1 only has step 0: later steps are zero in both directions
    for (let s = 1; s < S; s++) for (let d = 0; d < 2; d++) expectClose(y.slice(((s * 2 + d) * 2 + 1) * H, ((s * 2 + d) * 2 + 2) * H), [0, 0, 0]);
    // a length-1 sequence: forward and reverse each see just x[0]; same as running batch 1 alone on one step
    const x1 = Tensor.f32([1, 1, I], vals(X).slice(I, 2 * I));
    const [Y1, Yh1] = run("LSTM", [x1, W, R], { hidden_size: int(H), direction: str("bidirectional") });
    const y1 = vals(Y1!);
    expectClose(y.slice(1 * H, 2 * H), y1.slice(0, H));
    expectClose(y.slice(3 * H, 4 * H), y1.slice(H, 2 * H));
    const yh = vals(Yh!), yh1 = vals(Yh1!);
    expectClose(yh.slice(H, 2 * H), yh1.slice(0, H));
    expectClose(yh.slice(3 * H, 4 * H), yh1.slice(H, 2 * H));
  });

  it("layout 1 is layout 0 with batch first", () => {
    const S = 3, B = 2, I = 2, H = 2;
    const X = rnd([S, B, I]), W = rnd([2, 4 * H, I]), R = rnd([2, 4 * H, H]), h0 = rnd([2, B, H]), c0 = rnd([2, B, H]);
    const attrs = { hidden_size: int(H), direction: str("bidirectional") };
    const [Y0, Yh0, Yc0] = run("LSTM", [X, W, R, undefined, undefined, h0, c0], attrs);
    const tr = (t: Tensor, a: number, b: number, rest: number) => {
      const v = vals(t), o: number[] = [];
      for (let j = 0; j < b; j++) for (let i = 0; i < a; i++) o.push(...v.slice((i * b + j) * rest, (i * b + j + 1) * rest));
      return Tensor.f32([b, a, ...t.shape.slice(2)], o);
    };
    const [Y1, Yh1, Yc1] = run("LSTM", [tr(X, S, B, I), W, R, undefined, undefined, tr(h0, 2, B, H), tr(c0, 2, B, H)], { ...attrs, layout: int(1) });
    expect(Y1!.shape).toEqual([B, S, 2, H]);
    // Y layout 0 is [S, D, B, H]; layout 1 is [B, S, D, H]
    const y0 = vals(Y0!), y1 = vals(Y1!);
    for (let s = 0; s < S; s++) for (let d = 0; d < 2; d++) for (let b = 0; b < B; b++) {
      expectClose(y1.slice(((b * S + s) * 2 + d) * H, ((b * S + s) * 2 + d + 1) * H), y0.slice(((s * 2 + d) * B + b) * H, ((s * 2 + d) * B + b + 1) * H));
    }
    expectClose(vals(Yh1!), vals(tr(Yh0!, 2, B, H)));
    expectClose(vals(Yc1!), vals(tr(Yc0!, 2, B, H)));
  });
});

describe("GRU", () => {
  // hidden 1, input 1; gates z, r, h; W_h = 1, R_h = 1, Rb_h = 1, h0 = 0.5: z = r = 0.5
  const X = Tensor.f32([1, 1, 1], [1]);
  const W = Tensor.f32([1, 3, 1], [0, 0, 1]);
  const R = Tensor.f32([1, 3, 1], [0, 0, 1]);
  const B = Tensor.f32([1, 6], [0, 0, 0, 0, 0, 1]);
  const h0 = Tensor.f32([1, 1, 1], [0.5]);
  it("linear_before_reset = 0: h~ = tanh(x Wh + (r * h) Rh + Rbh)", () => {
    const [Y, Yh] = run("GRU", [X, W, R, B, undefined, h0], { hidden_size: int(1) });
    const want = 0.5 * Math.tanh(1 + 0.25 + 1) + 0.5 * 0.5;
    expectClose(vals(Y!), [want]);
    expectClose(vals(Yh!), [want]);
  });
  it("linear_before_reset = 1: h~ = tanh(x Wh + r * (h Rh + Rbh))", () => {
    const [, Yh] = run("GRU", [X, W, R, B, undefined, h0], { hidden_size: int(1), linear_before_reset: int(1) });
    expectClose(vals(Yh!), [0.5 * Math.tanh(1 + 0.5 * (0.5 + 1)) + 0.25]);
  });
});

describe("RNN", () => {
  it("Relu activation over two steps", () => {
    const X = Tensor.f32([2, 1, 1], [1, -3]);
    const [Y, Yh] = run("RNN", [X, Tensor.f32([1, 1, 1], [2]), Tensor.f32([1, 1, 1], [1]), Tensor.f32([1, 2], [0.5, 0])], {
      hidden_size: int(1), activations: { type: "strings", value: ["Relu"] },
    });
    expectClose(vals(Y!), [2.5, 0]);
    expectClose(vals(Yh!), [0]);
  });
  it("default Tanh, float64 keeps its dtype", () => {
    const X = Tensor.fromNumbers("float64", [1, 1, 2], [1, 2]);
    const [Y] = run("RNN", [X, Tensor.fromNumbers("float64", [1, 1, 2], [0.5, -0.25]), Tensor.fromNumbers("float64", [1, 1, 1], [3])], { hidden_size: int(1) });
    expect(Y!.dtype).toBe("float64");
    expect(vals(Y!)).toEqual([Math.tanh(0)]);
  });
});
