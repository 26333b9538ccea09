/** Caffe reader for the q IR: deploy .prototxt (V1 `layers` or `layer`) + binary .caffemodel. */
export { readCaffe, readCaffeSync, decodeCaffe, type ReadCaffeOptions, type DecodeCaffeOptions } from "./read.js";
export { parsePrototxt, parseTextProto, type PlainObject, type PlainValue, type TextMessage, type TextField, type TextValue } from "./prototxt.js";
export { decodeCaffemodel, decodeBlob, type Blob, type LayerWeights } from "./weights.js";
export { LAYER_BUILDERS, type LayerBuilder } from "./layers.js";
export { CAFFE_PROTO } from "./caffe-proto.js";
