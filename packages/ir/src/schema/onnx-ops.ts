/**
 * Every operator of the standard ai.onnx domain (opsets 1-26), deprecated and experimental ones
 * included. Tells a truly unknown op (a typo, a custom op) from a standard op q has no schema for.
 */
export const ONNX_OPS: ReadonlySet<string> = new Set([
  "Abs", "Acos", "Acosh", "Add", "AffineGrid", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
  "Attention", "AveragePool",
  "BatchNormalization", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor",
  "BlackmanWindow",
  "Cast", "CastLike", "Ceil", "Celu", "CenterCropPad", "Clip", "Col2Im", "Compress", "Concat",
  "ConcatFromSequence", "Constant", "ConstantOfShape", "Conv", "ConvInteger", "ConvTranspose", "Cos", "Cosh",
  "CumProd", "CumSum",
  "DFT", "DeformConv", "DepthToSpace", "DequantizeLinear", "Det", "Div", "Dropout", "DynamicQuantizeLinear",
  "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike",
  "Flatten", "Floor",
  "GRU", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool", "GlobalLpPool",
  "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GroupNormalization",
  "HammingWindow", "HannWindow", "HardSigmoid", "HardSwish", "Hardmax",
  "Identity", "If", "ImageDecoder", "InstanceNormalization", "IsInf", "IsNaN",
  "LRN", "LSTM", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop",
  "LpNormalization", "LpPool",
  "MatMul", "MatMulInteger", "Max", "MaxPool", "MaxRoiPool", "MaxUnpool", "Mean", "MeanVarianceNormalization",
  "MelWeightMatrix", "Min", "Mish", "Mod", "Mul", "Multinomial",
  "Neg", "NegativeLogLikelihoodLoss", "NonMaxSuppression", "NonZero", "Not",
  "OneHot", "Optional", "OptionalGetElement", "OptionalHasElement", "Or",
  "PRelu", "Pad", "Pow",
  "QLinearConv", "QLinearMatMul", "QuantizeLinear",
  "RMSNormalization", "RNN", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range",
  "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
  "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "RegexFullMatch", "Relu", "Reshape", "Resize",
  "ReverseSequence", "RoiAlign", "RotaryEmbedding", "Round",
  "STFT", "Scan", "Scatter", "ScatterElements", "ScatterND", "Selu", "SequenceAt", "SequenceConstruct",
  "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength", "SequenceMap", "Shape", "Shrink",
  "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax", "SoftmaxCrossEntropyLoss", "Softplus",
  "Softsign", "SpaceToDepth", "Split", "SplitToSequence", "Sqrt", "Squeeze", "StringConcat",
  "StringNormalizer", "StringSplit", "Sub", "Sum", "Swish",
  "Tan", "Tanh", "TensorScatter", "TfIdfVectorizer", "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu",
  "Unique", "Unsqueeze", "Upsample",
  "Where", "Xor",
  // experimental ops of early ONNX releases (removed since, still found in old files)
  "ATen", "Affine", "ConstantFill", "Crop", "DynamicSlice", "GRUUnit", "GivenTensorFill", "ImageScaler",
  "ParametricSoftplus", "Scale", "ScaledTanh",
]);

/** True when `opType` in `domain` is a standard ONNX operator. */
export function isOnnxOp(opType: string, domain = ""): boolean {
  return (domain === "" || domain === "ai.onnx") && ONNX_OPS.has(opType);
}
