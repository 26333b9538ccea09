import protobuf from "protobufjs";

/**
 * The part of caffe.proto that q reads, written for q from the facts in specs/formats.md §2
 * (field numbers and proto2 defaults of BVLC caffe; fork layers as noted).
 *
 * Two schemas live here:
 * - `caffe.NetParameter` and friends, with every default, drive the *prototxt* reader: text-format
 *   fields are looked up by name and absent fields take the declared default. Field numbers do not
 *   matter for text, but they are BVLC's where BVLC has the field.
 * - `caffe.WeightsNet` decodes a binary *.caffemodel*. It reads only layer names, types and blobs
 *   (as raw bytes, decoded by `weights.ts` straight into typed arrays), so parameter messages of
 *   forks whose field numbers clash with BVLC's never get decoded.
 */
export const CAFFE_PROTO = `
syntax = "proto2";
package caffe;

enum Phase { TRAIN = 0; TEST = 1; }
enum Engine { DEFAULT = 0; CAFFE = 1; CUDNN = 2; }

message BlobShape { repeated int64 dim = 1 [packed = true]; }

message BlobProto {
  optional BlobShape shape = 7;
  repeated float data = 5 [packed = true];
  repeated float diff = 6 [packed = true];
  repeated double double_data = 8 [packed = true];
  repeated double double_diff = 9 [packed = true];
  optional int32 num = 1 [default = 0];
  optional int32 channels = 2 [default = 0];
  optional int32 height = 3 [default = 0];
  optional int32 width = 4 [default = 0];
}

message NetState {
  optional Phase phase = 1 [default = TEST];
  optional int32 level = 2 [default = 0];
  repeated string stage = 3;
}

message NetStateRule {
  optional Phase phase = 1;
  optional int32 min_level = 2;
  optional int32 max_level = 3;
  repeated string stage = 4;
  repeated string not_stage = 5;
}

message ParamSpec {
  enum DimCheckMode { STRICT = 0; PERMISSIVE = 1; }
  optional string name = 1;
  optional DimCheckMode share_mode = 2;
  optional float lr_mult = 3 [default = 1.0];
  optional float decay_mult = 4 [default = 1.0];
}

message FillerParameter {
  enum VarianceNorm { FAN_IN = 0; FAN_OUT = 1; AVERAGE = 2; }
  optional string type = 1 [default = "constant"];
  optional float value = 2 [default = 0];
  optional float min = 3 [default = 0];
  optional float max = 4 [default = 1];
  optional float mean = 5 [default = 0];
  optional float std = 6 [default = 1];
  optional int32 sparse = 7 [default = -1];
  optional VarianceNorm variance_norm = 8 [default = FAN_IN];
}

message NetParameter {
  optional string name = 1;
  repeated string input = 3;
  repeated BlobShape input_shape = 8;
  repeated int32 input_dim = 4;
  optional bool force_backward = 5 [default = false];
  optional NetState state = 6;
  optional bool debug_info = 7 [default = false];
  repeated LayerParameter layer = 100;
  repeated V1LayerParameter layers = 2;
}

message LayerParameter {
  optional string name = 1;
  optional string type = 2;
  repeated string bottom = 3;
  repeated string top = 4;
  optional Phase phase = 10;
  repeated float loss_weight = 5;
  repeated ParamSpec param = 6;
  repeated BlobProto blobs = 7;
  repeated bool propagate_down = 11;
  repeated NetStateRule include = 8;
  repeated NetStateRule exclude = 9;

  optional ConcatParameter concat_param = 104;
  optional ConvolutionParameter convolution_param = 106;
  optional CropParameter crop_param = 144;
  optional DropoutParameter dropout_param = 108;
  optional DummyDataParameter dummy_data_param = 109;
  optional EltwiseParameter eltwise_param = 110;
  optional ELUParameter elu_param = 140;
  optional ExpParameter exp_param = 111;
  optional FlattenParameter flatten_param = 135;
  optional InnerProductParameter inner_product_param = 117;
  optional InputParameter input_param = 143;
  optional LogParameter log_param = 134;
  optional LRNParameter lrn_param = 118;
  optional MemoryDataParameter memory_data_param = 119;
  optional PoolingParameter pooling_param = 121;
  optional PowerParameter power_param = 122;
  optional PReLUParameter prelu_param = 131;
  optional ReLUParameter relu_param = 123;
  optional ReshapeParameter reshape_param = 133;
  optional ScaleParameter scale_param = 142;
  optional BiasParameter bias_param = 141;
  optional SigmoidParameter sigmoid_param = 124;
  optional SoftmaxParameter softmax_param = 125;
  optional SliceParameter slice_param = 126;
  optional TanHParameter tanh_param = 127;
  optional ClipParameter clip_param = 148;
  optional BatchNormParameter batch_norm_param = 139;
  // forks (numbers as netron's caffe-schema collects them; only names matter for prototxt)
  optional PermuteParameter permute_param = 202;
  optional InterpParameter interp_param = 2143;
  optional UpsampleParameter upsample_param = 149;
}

// Legacy "layers { }" (NetParameter field 2). Only the parameters q translates are declared.
message V1LayerParameter {
  enum LayerType {
    NONE = 0; ABSVAL = 35; ACCURACY = 1; ARGMAX = 30; BNLL = 2; CONCAT = 3; CONTRASTIVE_LOSS = 37;
    CONVOLUTION = 4; DATA = 5; DECONVOLUTION = 39; DROPOUT = 6; DUMMY_DATA = 32; EUCLIDEAN_LOSS = 7;
    ELTWISE = 25; EXP = 38; FLATTEN = 8; HDF5_DATA = 9; HDF5_OUTPUT = 10; HINGE_LOSS = 28; IM2COL = 11;
    IMAGE_DATA = 12; INFOGAIN_LOSS = 13; INNER_PRODUCT = 14; LRN = 15; MEMORY_DATA = 29;
    MULTINOMIAL_LOGISTIC_LOSS = 16; MVN = 34; POOLING = 17; POWER = 26; RELU = 18; SIGMOID = 19;
    SIGMOID_CROSS_ENTROPY_LOSS = 27; SILENCE = 36; SOFTMAX = 20; SOFTMAX_LOSS = 21; SPLIT = 22;
    SLICE = 33; TANH = 23; WINDOW_DATA = 24; THRESHOLD = 31;
  }
  repeated string bottom = 2;
  repeated string top = 3;
  optional string name = 4;
  repeated NetStateRule include = 32;
  repeated NetStateRule exclude = 33;
  optional LayerType type = 5;
  repeated BlobProto blobs = 6;
  repeated string param = 1001;
  repeated float blobs_lr = 7;
  repeated float weight_decay = 8;
  repeated float loss_weight = 35;
  optional ConcatParameter concat_param = 9;
  optional ConvolutionParameter convolution_param = 10;
  optional DropoutParameter dropout_param = 12;
  optional DummyDataParameter dummy_data_param = 26;
  optional EltwiseParameter eltwise_param = 24;
  optional ExpParameter exp_param = 41;
  optional InnerProductParameter inner_product_param = 17;
  optional LRNParameter lrn_param = 18;
  optional MemoryDataParameter memory_data_param = 22;
  optional PoolingParameter pooling_param = 19;
  optional PowerParameter power_param = 21;
  optional ReLUParameter relu_param = 30;
  optional SigmoidParameter sigmoid_param = 38;
  optional SoftmaxParameter softmax_param = 39;
  optional SliceParameter slice_param = 31;
  optional TanHParameter tanh_param = 37;
}

message ConvolutionParameter {
  optional uint32 num_output = 1;
  optional bool bias_term = 2 [default = true];
  repeated uint32 pad = 3;
  repeated uint32 kernel_size = 4;
  repeated uint32 stride = 6;
  repeated uint32 dilation = 18;
  optional uint32 pad_h = 9 [default = 0];
  optional uint32 pad_w = 10 [default = 0];
  optional uint32 kernel_h = 11;
  optional uint32 kernel_w = 12;
  optional uint32 stride_h = 13;
  optional uint32 stride_w = 14;
  optional uint32 group = 5 [default = 1];
  optional FillerParameter weight_filler = 7;
  optional FillerParameter bias_filler = 8;
  optional Engine engine = 15 [default = DEFAULT];
  optional int32 axis = 16 [default = 1];
  optional bool force_nd_im2col = 17 [default = false];
}

message PoolingParameter {
  enum PoolMethod { MAX = 0; AVE = 1; STOCHASTIC = 2; }
  enum RoundMode { CEIL = 0; FLOOR = 1; }
  optional PoolMethod pool = 1 [default = MAX];
  optional uint32 pad = 4 [default = 0];
  optional uint32 pad_h = 9 [default = 0];
  optional uint32 pad_w = 10 [default = 0];
  optional uint32 kernel_size = 2;
  optional uint32 kernel_h = 5;
  optional uint32 kernel_w = 6;
  optional uint32 stride = 3 [default = 1];
  optional uint32 stride_h = 7;
  optional uint32 stride_w = 8;
  optional Engine engine = 11 [default = DEFAULT];
  optional bool global_pooling = 12 [default = false];
  optional RoundMode round_mode = 13 [default = CEIL];
  // some forks spell the rounding as a bool (true = CEIL); number chosen by q, text-only
  optional bool ceil_mode = 1013 [default = true];
}

message InnerProductParameter {
  optional uint32 num_output = 1;
  optional bool bias_term = 2 [default = true];
  optional FillerParameter weight_filler = 3;
  optional FillerParameter bias_filler = 4;
  optional int32 axis = 5 [default = 1];
  optional bool transpose = 6 [default = false];
}

message BatchNormParameter {
  optional bool use_global_stats = 1;
  optional float moving_average_fraction = 2 [default = 0.999];
  optional float eps = 3 [default = 1e-5];
}

message ScaleParameter {
  optional int32 axis = 1 [default = 1];
  optional int32 num_axes = 2 [default = 1];
  optional FillerParameter filler = 3;
  optional bool bias_term = 4 [default = false];
  optional FillerParameter bias_filler = 5;
}

message BiasParameter {
  optional int32 axis = 1 [default = 1];
  optional int32 num_axes = 2 [default = 1];
  optional FillerParameter filler = 3;
}

message EltwiseParameter {
  enum EltwiseOp { PROD = 0; SUM = 1; MAX = 2; }
  optional EltwiseOp operation = 1 [default = SUM];
  repeated float coeff = 2;
  optional bool stable_prod_grad = 3 [default = true];
}

message ConcatParameter {
  optional int32 axis = 2 [default = 1];
  optional uint32 concat_dim = 1 [default = 1];
}

message SliceParameter {
  optional int32 axis = 3 [default = 1];
  repeated uint32 slice_point = 2;
  optional uint32 slice_dim = 1 [default = 1];
}

message ReLUParameter {
  optional float negative_slope = 1 [default = 0];
  optional Engine engine = 2 [default = DEFAULT];
}

message PReLUParameter {
  optional FillerParameter filler = 1;
  optional bool channel_shared = 2 [default = false];
}

message ELUParameter { optional float alpha = 1 [default = 1]; }
message ClipParameter { optional float min = 1; optional float max = 2; }
message SigmoidParameter { optional Engine engine = 1 [default = DEFAULT]; }
message TanHParameter { optional Engine engine = 1 [default = DEFAULT]; }

message SoftmaxParameter {
  optional Engine engine = 1 [default = DEFAULT];
  optional int32 axis = 2 [default = 1];
}

message ReshapeParameter {
  optional BlobShape shape = 1;
  optional int32 axis = 2 [default = 0];
  optional int32 num_axes = 3 [default = -1];
}

message FlattenParameter {
  optional int32 axis = 1 [default = 1];
  optional int32 end_axis = 2 [default = -1];
}

message LRNParameter {
  enum NormRegion { ACROSS_CHANNELS = 0; WITHIN_CHANNEL = 1; }
  optional uint32 local_size = 1 [default = 5];
  optional float alpha = 2 [default = 1.0];
  optional float beta = 3 [default = 0.75];
  optional NormRegion norm_region = 4 [default = ACROSS_CHANNELS];
  optional float k = 5 [default = 1.0];
  optional Engine engine = 6 [default = DEFAULT];
}

message PowerParameter {
  optional float power = 1 [default = 1.0];
  optional float scale = 2 [default = 1.0];
  optional float shift = 3 [default = 0.0];
}

message ExpParameter {
  optional float base = 1 [default = -1.0];
  optional float scale = 2 [default = 1.0];
  optional float shift = 3 [default = 0.0];
}

message LogParameter {
  optional float base = 1 [default = -1.0];
  optional float scale = 2 [default = 1.0];
  optional float shift = 3 [default = 0.0];
}

message DropoutParameter {
  optional float dropout_ratio = 1 [default = 0.5];
  // fork field (caffe-windows and others): false = scale by (1 - ratio) at inference; text-only
  optional bool scale_train = 2 [default = true];
}

message CropParameter {
  optional int32 axis = 1 [default = 2];
  repeated uint32 offset = 2;
}

message InputParameter { repeated BlobShape shape = 1; }

message DummyDataParameter {
  optional FillerParameter data_filler = 1;
  repeated BlobShape shape = 6;
  repeated uint32 num = 2;
  repeated uint32 channels = 3;
  repeated uint32 height = 4;
  repeated uint32 width = 5;
}

message MemoryDataParameter {
  optional uint32 batch_size = 1;
  optional uint32 channels = 2;
  optional uint32 height = 3;
  optional uint32 width = 4;
}

message PermuteParameter { repeated uint32 order = 1; }

message InterpParameter {
  optional int32 height = 1 [default = 0];
  optional int32 width = 2 [default = 0];
  optional int32 zoom_factor = 3 [default = 1];
  optional int32 shrink_factor = 4 [default = 1];
  optional int32 pad_beg = 5 [default = 0];
  optional int32 pad_end = 6 [default = 0];
}

message UpsampleParameter {
  optional float scale = 1 [default = 1];
  optional int32 scale_h = 2;
  optional int32 scale_w = 3;
}

// ---- binary .caffemodel: names, types and raw blob bytes only ----
message WeightsNet {
  optional string name = 1;
  repeated WeightsLayer layer = 100;
  repeated WeightsV1Layer layers = 2;
}
message WeightsLayer {
  optional string name = 1;
  optional string type = 2;
  repeated bytes blobs = 7;
}
message WeightsV1Layer {
  optional string name = 4;
  optional int32 type = 5;
  repeated bytes blobs = 6;
}
`;

export const caffeRoot = protobuf.parse(CAFFE_PROTO, { keepCase: true }).root;
caffeRoot.resolveAll();

export const NetParameterType = caffeRoot.lookupType("caffe.NetParameter");
export const WeightsNetType = caffeRoot.lookupType("caffe.WeightsNet");
export const V1LayerTypeEnum = caffeRoot.lookupEnum("caffe.V1LayerParameter.LayerType");

/** V1 LayerType enum name → the V2 type string. */
export const V1_TYPE_NAMES: Record<string, string> = {
  NONE: "None", ABSVAL: "AbsVal", ACCURACY: "Accuracy", ARGMAX: "ArgMax", BNLL: "BNLL", CONCAT: "Concat",
  CONTRASTIVE_LOSS: "ContrastiveLoss", CONVOLUTION: "Convolution", DATA: "Data", DECONVOLUTION: "Deconvolution",
  DROPOUT: "Dropout", DUMMY_DATA: "DummyData", EUCLIDEAN_LOSS: "EuclideanLoss", ELTWISE: "Eltwise", EXP: "Exp",
  FLATTEN: "Flatten", HDF5_DATA: "HDF5Data", HDF5_OUTPUT: "HDF5Output", HINGE_LOSS: "HingeLoss", IM2COL: "Im2col",
  IMAGE_DATA: "ImageData", INFOGAIN_LOSS: "InfogainLoss", INNER_PRODUCT: "InnerProduct", LRN: "LRN",
  MEMORY_DATA: "MemoryData", MULTINOMIAL_LOGISTIC_LOSS: "MultinomialLogisticLoss", MVN: "MVN", POOLING: "Pooling",
  POWER: "Power", RELU: "ReLU", SIGMOID: "Sigmoid", SIGMOID_CROSS_ENTROPY_LOSS: "SigmoidCrossEntropyLoss",
  SILENCE: "Silence", SOFTMAX: "Softmax", SOFTMAX_LOSS: "SoftmaxWithLoss", SPLIT: "Split", SLICE: "Slice",
  TANH: "TanH", WINDOW_DATA: "WindowData", THRESHOLD: "Threshold",
};
