import { Tensor, type Graph } from "@q/ir";

/**
 * Fold a per-channel constant Add that follows a Conv (TF's BiasAdd) into the Conv's bias input,
 * so the IR has Conv-with-bias as quantizers expect. The Add's output name is kept. Returns the
 * number of Adds removed.
 */
export function foldConvBias(g: Graph): number {
  const outputs = new Set(g.outputs.map((o) => o.name));
  const cons = g.consumers();
  const prod = g.producers();
  let n = 0;
  for (const add of [...g.nodes]) {
    if (add.opType !== "Add" || add.domain !== "") continue;
    for (const side of [0, 1]) {
      const conv = prod.get(add.inputs[side]!);
      const bName = add.inputs[1 - side]!;
      const b = g.initializers.get(bName);
      if (!conv || conv.opType !== "Conv" || conv.domain !== "" || !b) continue;
      const w = g.initializers.get(conv.inputs[1]!);
      if (!w || w.dtype !== b.dtype || !b.dtype.startsWith("float")) continue;
      const O = w.shape[0]!;
      const rank = w.shape.length;
      // bias must broadcast as [1, O, 1, ...] (or [O, 1, ...]) against the conv output
      const s = [...b.shape];
      while (s.length < rank) s.unshift(1);
      if (s.length !== rank || s[1] !== O || s.some((d, i) => i !== 1 && d !== 1)) continue;
      const convOut = conv.outputs[0]!;
      if (outputs.has(convOut) || (cons.get(convOut) ?? []).length !== 1) continue;
      let bias = b.toFloat32();
      const old = conv.inputs[2] ? g.initializers.get(conv.inputs[2]) : undefined;
      if (conv.inputs[2] && !old) continue;
      if (old) {
        const o = old.toFloat32();
        bias = Float32Array.from(bias, (v, i) => v + o[i]!);
      }
      const t = Tensor.fromNumbers(b.dtype, [O], bias);
      const name = g.uniqueName(`${add.outputs[0]}/bias`);
      g.initializers.set(name, t);
      conv.inputs[2] = name;
      conv.outputs[0] = add.outputs[0]!;
      g.removeNode(add);
      g.valueInfo.delete(convOut);
      n++;
      break;
    }
  }
  if (n) g.prune();
  return n;
}
