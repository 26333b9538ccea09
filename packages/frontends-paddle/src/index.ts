/** PaddlePaddle reader (not built yet). */
export {};
