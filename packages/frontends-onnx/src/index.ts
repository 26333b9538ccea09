/** ONNX reader and writer for the q IR. */
export { readOnnx, readOnnxSync, decodeOnnx, decodeTensorProto, readTensorProto, type ReadOnnxOptions } from "./read.js";
export { writeOnnx, encodeOnnx, type WriteOnnxOptions } from "./write.js";
export { decodeTensor, encodeTensor } from "./tensor-io.js";
