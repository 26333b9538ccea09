/** ONNX reader and writer for the q IR. */
export {};
