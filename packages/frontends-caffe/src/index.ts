/** Caffe reader (not built yet). */
export {};
