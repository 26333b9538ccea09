/** TensorFlow GraphDef reader (not built yet). */
export {};
