import { Node, type Graph } from "@q/ir";

/**
 * onnxruntime 1.20's PadFusion folds a constant-zero Pad into a following AveragePool but leaves
 * count_include_pad at 0, so the padded zeros drop out of the averages (FastestDet's output moves
 * to cosine 0.9995 against OpenCV and q's reference interpreter). Doing that fusion correctly
 * ourselves — pads moved into the pool, count_include_pad = 1 — gives ORT nothing to fuse and
 * keeps the model's meaning. Returns how many pools were rewritten.
 */
export function fuseZeroPadIntoAveragePool(g: Graph): number {
  const prod = g.producers();
  const cons = g.consumers();
  const outputs = new Set(g.outputs.map((o) => o.name));
  let n = 0;
  for (const pool of [...g.nodes]) {
    if (pool.opType !== "AveragePool" || pool.domain !== "") continue;
    if (pool.str("auto_pad", "NOTSET") !== "NOTSET") continue;
    const pad = prod.get(pool.inputs[0]!);
    if (!pad || pad.opType !== "Pad" || pad.domain !== "") continue;
    if ((cons.get(pad.outputs[0]!) ?? []).length !== 1 || outputs.has(pad.outputs[0]!)) continue;
    const pads = padAmounts(g, pad);
    if (!pads) continue;
    const rank = pads.length / 2;
    const spatial = rank - 2;
    // only spatial padding, non-negative, with zeros
    if (spatial < 1 || pads[0] || pads[1] || pads[rank] || pads[rank + 1] || pads.some((p) => p < 0)) continue;
    const own = pool.ints("pads", new Array(spatial * 2).fill(0));
    if (own.some((p) => p !== 0) && pool.int("count_include_pad", 0) === 0) continue;
    const merged = [
      ...Array.from({ length: spatial }, (_, i) => pads[2 + i]! + own[i]!),
      ...Array.from({ length: spatial }, (_, i) => pads[rank + 2 + i]! + own[spatial + i]!),
    ];
    pool.setInts("pads", merged);
    pool.setInt("count_include_pad", 1);
    pool.inputs[0] = pad.inputs[0]!;
    g.removeNode(pad);
    n++;
  }
  return n;
}

/** Pads of a constant-mode, zero-value Pad node as [begin..., end...], or undefined. */
function padAmounts(g: Graph, pad: Node): number[] | undefined {
  if (pad.str("mode", "constant") !== "constant") return undefined;
  const opset = g.opset("");
  if (opset < 11) {
    if (pad.float("value", 0) !== 0) return undefined;
    return pad.ints("pads") ?? pad.ints("paddings");
  }
  const pads = g.initializers.get(pad.inputs[1] ?? "");
  if (!pads) return undefined;
  const value = pad.inputs[2] ? g.initializers.get(pad.inputs[2]) : undefined;
  if (pad.inputs[2] && (!value || value.toNumbers().some((v) => v !== 0))) return undefined;
  if (pad.inputs[3]) return undefined; // axes (opset 18): leave alone
  return pads.toArray();
}
