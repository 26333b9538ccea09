/** TensorFlow frozen GraphDef (.pb) reader: TF ops → q IR (ai.onnx, opset 17), NCHW inside. */
export { readTf, readTfSync, decodeTf, type ReadTfOptions } from "./read.js";
export { supportedTfOps, OPS as TF_OPS, type OpBuilder } from "./ops.js";
export { encodeGraphDef, TF_DTYPE, type PGraph, type PNode, type PAttr, type PTensor } from "./proto.js";
