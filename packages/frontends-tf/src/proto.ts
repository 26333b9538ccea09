import protobuf from "protobufjs";

/**
 * The part of TensorFlow's graph.proto / node_def.proto / attr_value.proto / tensor.proto /
 * tensor_shape.proto that q reads (field numbers from the published schema, see
 * shared/specs/formats.md §3.1). Written for q; proto3 like the originals, so numeric repeated
 * fields are packed on write and accepted packed or unpacked on read.
 */
const TF_PROTO = `
syntax = "proto3";
package tensorflow;

message GraphDef {
  repeated NodeDef node = 1;
  int32 version = 3;
  VersionDef versions = 4;
}

message VersionDef {
  int32 producer = 1;
  int32 min_consumer = 2;
  repeated int32 bad_consumers = 3;
}

message NodeDef {
  string name = 1;
  string op = 2;
  repeated string input = 3;
  string device = 4;
  map<string, AttrValue> attr = 5;
}

message AttrValue {
  message ListValue {
    repeated bytes s = 2;
    repeated int64 i = 3;
    repeated float f = 4;
    repeated bool b = 5;
    repeated int32 type = 6;
    repeated TensorShapeProto shape = 7;
    repeated TensorProto tensor = 8;
    repeated NameAttrList func = 9;
  }
  oneof value {
    ListValue list = 1;
    bytes s = 2;
    int64 i = 3;
    float f = 4;
    bool b = 5;
    int32 type = 6;
    TensorShapeProto shape = 7;
    TensorProto tensor = 8;
    string placeholder = 9;
    NameAttrList func = 10;
  }
}

message NameAttrList {
  string name = 1;
  map<string, AttrValue> attr = 2;
}

message TensorShapeProto {
  message Dim {
    int64 size = 1;
    string name = 2;
  }
  repeated Dim dim = 2;
  bool unknown_rank = 3;
}

message TensorProto {
  int32 dtype = 1;
  TensorShapeProto tensor_shape = 2;
  int32 version_number = 3;
  bytes tensor_content = 4;
  repeated float float_val = 5;
  repeated double double_val = 6;
  repeated int32 int_val = 7;
  repeated bytes string_val = 8;
  repeated float scomplex_val = 9;
  repeated int64 int64_val = 10;
  repeated bool bool_val = 11;
  repeated double dcomplex_val = 12;
  repeated int32 half_val = 13;
  repeated uint32 uint32_val = 16;
  repeated uint64 uint64_val = 17;
}
`;

const root = protobuf.parse(TF_PROTO, { keepCase: true }).root;

export const GraphDefMsg = root.lookupType("tensorflow.GraphDef");
export const NodeDefMsg = root.lookupType("tensorflow.NodeDef");
export const TensorProtoMsg = root.lookupType("tensorflow.TensorProto");

/** int64 fields arrive as number or Long (long.js is installed with protobufjs). */
export type Int64 = number | { low: number; high: number; unsigned?: boolean; toNumber(): number };

export interface PDim { size?: Int64; name?: string }
export interface PShape { dim?: PDim[]; unknown_rank?: boolean }
export interface PTensor {
  dtype?: number;
  tensor_shape?: PShape;
  tensor_content?: Uint8Array;
  float_val?: number[];
  double_val?: number[];
  int_val?: number[];
  string_val?: Uint8Array[];
  int64_val?: Int64[];
  bool_val?: boolean[];
  half_val?: number[];
  uint32_val?: number[];
  uint64_val?: Int64[];
}
export interface PList {
  s?: Uint8Array[];
  i?: Int64[];
  f?: number[];
  b?: boolean[];
  type?: number[];
  shape?: PShape[];
  tensor?: PTensor[];
}
export interface PAttr {
  list?: PList;
  s?: Uint8Array;
  i?: Int64;
  f?: number;
  b?: boolean;
  type?: number;
  shape?: PShape;
  tensor?: PTensor;
  placeholder?: string;
  func?: unknown;
}
export interface PNode {
  name?: string;
  op?: string;
  input?: string[];
  device?: string;
  attr?: Record<string, PAttr>;
}
export interface PGraph { node?: PNode[]; version?: number }

export function toNum(x: Int64 | undefined | null): number {
  if (x === undefined || x === null) return 0;
  return typeof x === "number" ? x : x.toNumber();
}

/** Whether a proto3 field was present on the wire (oneof members and messages track presence). */
export function has(o: object | undefined, k: string): boolean {
  return !!o && Object.prototype.hasOwnProperty.call(o, k) && (o as Record<string, unknown>)[k] !== undefined;
}

/** Encode a GraphDef given as a plain object (snake_case field names): handy for tests and tools. */
export function encodeGraphDef(g: PGraph): Uint8Array {
  const err = GraphDefMsg.verify(g);
  if (err) throw new Error(`encodeGraphDef: ${err}`);
  return GraphDefMsg.encode(GraphDefMsg.fromObject(g)).finish();
}

/** TensorFlow DataType numbers (types.proto). `_REF` variants are these plus 100. */
export const TF_DTYPE = {
  FLOAT: 1, DOUBLE: 2, INT32: 3, UINT8: 4, INT16: 5, INT8: 6, STRING: 7, COMPLEX64: 8, INT64: 9, BOOL: 10,
  QINT8: 11, QUINT8: 12, QINT32: 13, BFLOAT16: 14, QINT16: 15, QUINT16: 16, UINT16: 17, COMPLEX128: 18,
  HALF: 19, RESOURCE: 20, VARIANT: 21, UINT32: 22, UINT64: 23,
} as const;
