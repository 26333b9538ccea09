/** ONNX Runtime executor for the q IR. */
export {};
