import { it } from "vitest";
import { TensorStats } from "./stats.js";
import { kldThreshold, thresholdFor } from "./thresholds.js";
function rng(seed: number) { let a = seed >>> 0; return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; }; }
function gaussian(n: number, scale: number, seed: number) { const r = rng(seed); const o = new Float32Array(n); for (let i = 0; i < n; i++) { const u = 1 - r(); o[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r()); } return o; }
it("probe", () => {
  for (const sc of [[1, 0.8, 1.9, 2.6], [1, 0.8, 1.7, 2.3], [1, 0.9, 1.5, 2.2]]) {
    const s = new TensorStats(); sc.forEach((v, i) => s.update(gaussian(50_000, v, 10 + i)));
    console.log(sc, s.histogram.length, s.histogram.length % 128);
  }
  const g = new TensorStats(); g.update(gaussian(200_000, 1, 1));
  console.log("gauss", g.absmax, kldThreshold(g.histogram, g.width), thresholdFor(g, "kl"));
  const r = rng(3); const x = gaussian(200_000, 1, 1).map((v) => v); for (let i = 0; i < x.length; i++) if (r() < 0.0005) x[i] *= 60;
  const l = new TensorStats(); l.update(x); console.log("tail", l.absmax, thresholdFor(l, "kl"));
});
