// onnxruntime-node ships no typings of its own; its API is onnxruntime-common's.
declare module "onnxruntime-node" {
  export * from "onnxruntime-common";
}
