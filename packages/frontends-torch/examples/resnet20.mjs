// CIFAR-10 ResNet-20 (akamaster/pytorch_resnet_cifar10) as a q model-definition script.
// Use: buildFromDefinition("examples/resnet20.mjs", "resnet20_cifar10_state_dict.pth", { modelName: "resnet20" })
// Architecture: conv3x3(3->16) + BN + ReLU, 3 stages x 3 BasicBlocks (16, 32, 64 channels; stages 2
// and 3 start with stride 2), global average pool, Linear(64 -> 10). Shortcut "option A": when the
// shape changes, subsample x[:, :, ::2, ::2] and zero-pad planes/4 channels on each side.

/** @param {import("@q/ir").GraphBuilder} b @param {Map<string, import("@q/ir").Tensor>} w */
export function build(b, w, name = "resnet20") {
  const p = (k) => {
    if (!w.has(k)) throw new Error(`weight '${k}' is missing from the state dict`);
    return b.value(k) ? k : b.initializer(k, w.get(k));
  };
  const convBn = (x, prefix, conv, bn, stride) =>
    b.batchNorm(b.conv2d(x, p(`${prefix}${conv}.weight`), undefined, { stride, padding: 1 }),
      p(`${prefix}${bn}.weight`), p(`${prefix}${bn}.bias`), p(`${prefix}${bn}.running_mean`), p(`${prefix}${bn}.running_var`));

  let x = b.input("input", "float32", ["N", 3, 32, 32]);
  x = b.relu(convBn(x, "", "conv1", "bn1", 1));
  let inPlanes = 16;
  [16, 32, 64].forEach((planes, stage) => {
    for (let i = 0; i < 3; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      const pre = `layer${stage + 1}.${i}.`;
      let out = b.relu(convBn(x, pre, "conv1", "bn1", stride));
      out = convBn(out, pre, "conv2", "bn2", 1);
      let sc = x;
      if (stride !== 1 || inPlanes !== planes) {
        const sub = b.slice(x, [0, 0], [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], [2, 3], [2, 2]);
        const q = planes / 4;
        sc = b.pad(sub, [0, q, 0, 0, 0, q, 0, 0]);
      }
      x = b.relu(b.add(out, sc));
      inPlanes = planes;
    }
  });
  const pooled = b.flatten(b.globalAvgPool(x), 1);
  const logits = b.op1("Gemm", [pooled, p("linear.weight"), p("linear.bias")], { transB: 1 }, { outputs: ["logits"] });
  b.output(logits);
  return b.build();
}

export const models = { resnet20: build };
