/** PaddlePaddle static inference models (.pdmodel + .pdiparams, or __model__ + per-variable files) into q IR. */
export { readPaddle, readPaddleSync, absentParams, PADDLE_META, type ReadPaddleOptions } from "./read.js";
export { PADDLE_OPS, supportedPaddleOps } from "./ops.js";
export { readLoDTensor, readCombinedParams, readSeparateParams, dtypeFromPaddle, type ParamSpec, type LoDTensorRecord } from "./params.js";
export type { OpCtx, OpBuilder } from "./context.js";
