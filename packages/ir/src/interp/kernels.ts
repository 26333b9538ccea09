import type { KernelTable } from "./types.js";
import { kernels as elementwise } from "./ops/elementwise.js";
import { kernels as tensorOps } from "./ops/tensor.js";
import { kernels as reduce } from "./ops/reduce.js";
import { kernels as quant } from "./ops/quant.js";
import { kernels as control } from "./ops/control.js";
import { kernels as conv } from "./ops/conv.js";
import { kernels as pool } from "./ops/pool.js";
import { kernels as matmul } from "./ops/matmul.js";
import { kernels as norm } from "./ops/norm.js";
import { kernels as resize } from "./ops/resize.js";
import { kernels as rnn } from "./ops/rnn.js";

/** Every kernel of the reference interpreter, by ONNX op type (ai.onnx domain). */
export const KERNELS: KernelTable = {
  ...elementwise,
  ...tensorOps,
  ...reduce,
  ...quant,
  ...control,
  ...conv,
  ...pool,
  ...matmul,
  ...norm,
  ...resize,
  ...rnn,
};
