import protobuf from "protobufjs";

/**
 * The subset of Paddle's framework.proto (package paddle.framework.proto, proto2) that q reads.
 * Field numbers and proto2 defaults from the formats spec §4.1; written for q. Unknown fields
 * (op_version_map, scalar attrs, var attrs, …) are skipped by the decoder. Upstream `required`
 * fields are declared optional so that one absent field gives our own error, not a decode failure.
 */
const PADDLE_PROTO = `
syntax = "proto2";
package paddle.framework.proto;

enum AttrType {
  INT = 0; FLOAT = 1; STRING = 2; INTS = 3; FLOATS = 4; STRINGS = 5; BOOLEAN = 6; BOOLEANS = 7;
  BLOCK = 8; LONG = 9; BLOCKS = 10; LONGS = 11; FLOAT64S = 12; VAR = 13; VARS = 14; FLOAT64 = 15;
}

message Version { optional int64 version = 1 [default = 0]; }

message OpDesc {
  message Attr {
    optional string name = 1;
    optional AttrType type = 2;
    optional int32 i = 3;
    optional float f = 4;
    optional string s = 5;
    repeated int32 ints = 6;
    repeated float floats = 7;
    repeated string strings = 8;
    optional bool b = 10;
    repeated bool bools = 11;
    optional int32 block_idx = 12;
    optional int64 l = 13;
    repeated int32 blocks_idx = 14;
    repeated int64 longs = 15;
    repeated double float64s = 16;
    optional string var_name = 17;
    repeated string vars_name = 18;
    optional double float64 = 19;
  }
  message Var {
    optional string parameter = 1;
    repeated string arguments = 2;
  }
  optional string type = 3;
  repeated Var inputs = 1;
  repeated Var outputs = 2;
  repeated Attr attrs = 4;
  optional bool is_target = 5 [default = false];
}

message VarType {
  enum Type {
    BOOL = 0; INT16 = 1; INT32 = 2; INT64 = 3; FP16 = 4; FP32 = 5; FP64 = 6; LOD_TENSOR = 7;
    SELECTED_ROWS = 8; FEED_MINIBATCH = 9; FETCH_LIST = 10; STEP_SCOPES = 11; LOD_RANK_TABLE = 12;
    LOD_TENSOR_ARRAY = 13; PLACE_LIST = 14; READER = 15; RAW = 17; TUPLE = 18; SIZE_T = 19;
    UINT8 = 20; INT8 = 21; BF16 = 22; COMPLEX64 = 23; COMPLEX128 = 24; STRING = 25; STRINGS = 26;
    VOCAB = 27; FEED_LIST = 28; PSTRING = 29; SPARSE_COO = 30;
  }
  message TensorDesc {
    optional Type data_type = 1;
    repeated int64 dims = 2;
  }
  message LoDTensorDesc {
    optional TensorDesc tensor = 1;
    optional int32 lod_level = 2 [default = 0];
  }
  message LoDTensorArrayDesc {
    optional TensorDesc tensor = 1;
    optional int32 lod_level = 2 [default = 0];
  }
  optional Type type = 1;
  optional TensorDesc selected_rows = 2;
  optional LoDTensorDesc lod_tensor = 3;
  optional LoDTensorArrayDesc tensor_array = 4;
}

message VarDesc {
  optional string name = 1;
  optional VarType type = 2;
  optional bool persistable = 3 [default = false];
  optional bool need_check_feed = 4 [default = false];
  optional bool is_parameter = 5 [default = false];
  optional bool stop_gradient = 6 [default = false];
}

message BlockDesc {
  optional int32 idx = 1;
  optional int32 parent_idx = 2;
  repeated VarDesc vars = 3;
  repeated OpDesc ops = 4;
  optional int32 forward_block_idx = 5 [default = -1];
}

message ProgramDesc {
  repeated BlockDesc blocks = 1;
  optional Version version = 4;
}
`;

const root = protobuf.parse(PADDLE_PROTO, { keepCase: true }).root;

export const ProgramDescT = root.lookupType("paddle.framework.proto.ProgramDesc");
export const TensorDescT = root.lookupType("paddle.framework.proto.VarType.TensorDesc");

/** int64 fields arrive as number or Long (long.js is installed); convert once with toNum. */
export type Int64 = number | { toNumber(): number };

export function toNum(x: Int64 | undefined | null): number {
  if (x === undefined || x === null) return 0;
  return typeof x === "number" ? x : x.toNumber();
}

export interface PAttr {
  name: string;
  type: number;
  i?: number;
  f?: number;
  s?: string;
  ints?: number[];
  floats?: number[];
  strings?: string[];
  b?: boolean;
  bools?: boolean[];
  block_idx?: number;
  l?: Int64;
  blocks_idx?: number[];
  longs?: Int64[];
  float64s?: number[];
  var_name?: string;
  vars_name?: string[];
  float64?: number;
}
export interface PVarSlot { parameter: string; arguments?: string[] }
export interface POp {
  type: string;
  inputs?: PVarSlot[];
  outputs?: PVarSlot[];
  attrs?: PAttr[];
  is_target?: boolean;
}
export interface PTensorDesc { data_type: number; dims?: Int64[] }
export interface PVarType {
  type: number;
  selected_rows?: PTensorDesc;
  lod_tensor?: { tensor: PTensorDesc; lod_level?: number };
  tensor_array?: { tensor: PTensorDesc; lod_level?: number };
}
export interface PVar {
  name: string;
  type: PVarType;
  persistable?: boolean;
  need_check_feed?: boolean;
  is_parameter?: boolean;
  stop_gradient?: boolean;
}
export interface PBlock {
  idx: number;
  parent_idx: number;
  vars?: PVar[];
  ops?: POp[];
  forward_block_idx?: number;
}
export interface PProgram { blocks?: PBlock[]; version?: { version?: Int64 } }

/** OpDesc.Attr.type numbers. */
export const ATTR = {
  INT: 0, FLOAT: 1, STRING: 2, INTS: 3, FLOATS: 4, STRINGS: 5, BOOLEAN: 6, BOOLEANS: 7, BLOCK: 8,
  LONG: 9, BLOCKS: 10, LONGS: 11, FLOAT64S: 12, VAR: 13, VARS: 14, FLOAT64: 15,
} as const;

/** VarType.Type numbers that matter here. */
export const VT = {
  BOOL: 0, INT16: 1, INT32: 2, INT64: 3, FP16: 4, FP32: 5, FP64: 6, LOD_TENSOR: 7, SELECTED_ROWS: 8,
  FEED_MINIBATCH: 9, FETCH_LIST: 10, LOD_TENSOR_ARRAY: 13, RAW: 17, UINT8: 20, INT8: 21, BF16: 22,
  COMPLEX64: 23, COMPLEX128: 24,
} as const;
