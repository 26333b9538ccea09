/**
 * Binds a prototxt syntax tree to the caffe schema (caffe-proto.ts): values are checked against the
 * declared field types, enum names are resolved, and every declared field gets its proto2 default
 * when absent. Which fields were written, where each message starts and which names the schema does
 * not know are kept on the side (WeakMaps) for messages and for "has" checks (Caffe's `has_pad_h()`).
 */
import protobuf from "protobufjs";
import { ModelFormatError } from "@q/ir";
import type { Pos, TextField, TextMessage, TextScalar } from "./prototxt.js";

export type Msg = Record<string, unknown>;

interface Meta {
  pos: Pos;
  present: Set<string>;
  /** Field names the schema does not declare, with where they were written. */
  unknown: Map<string, Pos>;
}

const META = new WeakMap<object, Meta>();

/** Whether `field` was written in the text (as opposed to taking its default). */
export function has(m: Msg | undefined, field: string): boolean {
  return !!m && !!META.get(m)?.present.has(field);
}

/** Where a message starts in the prototxt. */
export function posOf(m: Msg | undefined): Pos | undefined {
  return m ? META.get(m)?.pos : undefined;
}

/** Field names in `m` that the schema does not know. */
export function unknownFields(m: Msg | undefined): Map<string, Pos> {
  return (m && META.get(m)?.unknown) || new Map();
}

const INT_TYPES = new Set(["int32", "uint32", "sint32", "fixed32", "sfixed32", "int64", "uint64", "sint64", "fixed64", "sfixed64"]);
const FLOAT_TYPES = new Set(["float", "double"]);

function toPlainDefault(f: protobuf.Field): unknown {
  if (f.repeated) return [];
  if (f.resolvedType instanceof protobuf.Type) return undefined;
  const d = f.typeDefault as unknown;
  if (f.resolvedType instanceof protobuf.Enum) {
    const e = f.resolvedType;
    return typeof d === "number" ? (e.valuesById[d] ?? d) : d;
  }
  if (d && typeof d === "object" && "low" in (d as object)) return (d as { toNumber(): number }).toNumber();
  if (d instanceof Uint8Array) return "";
  return d;
}

export class Binder {
  constructor(private readonly file?: string) {}

  private fail(pos: Pos, msg: string): never {
    throw new ModelFormatError(`${pos.line}:${pos.col}: ${msg}`, this.file);
  }

  bind(m: TextMessage, type: protobuf.Type): Msg {
    const out: Msg = {};
    const meta: Meta = { pos: m.pos, present: new Set(), unknown: new Map() };
    META.set(out, meta);
    for (const f of type.fieldsArray) out[f.name] = toPlainDefault(f);
    for (const tf of m.fields) {
      const f = type.fields[tf.name];
      if (!f) {
        if (!meta.unknown.has(tf.name)) meta.unknown.set(tf.name, tf.pos);
        continue;
      }
      if (!f.repeated && (meta.present.has(f.name) || tf.values.length !== 1)) {
        if (tf.list) this.fail(tf.pos, `field '${tf.name}' of ${type.name} is not repeated, so it cannot take a [list]`);
        this.fail(tf.pos, `field '${tf.name}' of ${type.name} is not repeated but is given more than once`);
      }
      meta.present.add(f.name);
      const vals = tf.values.map((v) => this.value(v, f, tf, type));
      if (f.repeated) (out[f.name] as unknown[]).push(...vals);
      else out[f.name] = vals[0];
    }
    return out;
  }

  private value(v: TextMessage | TextScalar, f: protobuf.Field, tf: TextField, parent: protobuf.Type): unknown {
    const rt = f.resolvedType;
    const where = `field '${tf.name}' of ${parent.name}`;
    if (rt instanceof protobuf.Type) {
      if (v.kind !== "msg") this.fail(v.pos, `${where} is a message (write ${tf.name} { ... })`);
      return this.bind(v, rt);
    }
    if (v.kind === "msg") this.fail(v.pos, `${where} is a ${f.type}, not a message`);
    if (rt instanceof protobuf.Enum) {
      if (v.kind === "ident") {
        if (!(v.value in rt.values)) {
          this.fail(v.pos, `${where}: '${v.value}' is not one of ${Object.keys(rt.values).join(", ")}`);
        }
        return v.value;
      }
      if (v.kind === "num" && Number.isInteger(v.value) && rt.valuesById[v.value] !== undefined) return rt.valuesById[v.value];
      this.fail(v.pos, `${where}: expected one of ${Object.keys(rt.values).join(", ")}`);
    }
    switch (f.type) {
      case "string":
      case "bytes":
        if (v.kind !== "str") this.fail(v.pos, `${where} is a string: write it in quotes`);
        return v.value;
      case "bool":
        if (v.kind === "ident") {
          if (["true", "True", "t"].includes(v.value)) return true;
          if (["false", "False", "f"].includes(v.value)) return false;
        }
        if (v.kind === "num" && (v.value === 0 || v.value === 1)) return v.value === 1;
        this.fail(v.pos, `${where} is a bool: expected true or false`);
    }
    if (FLOAT_TYPES.has(f.type)) {
      if (v.kind === "num") return v.value;
      if (v.kind === "ident" && /^(inf|infinity|nan)f?$/i.test(v.value)) return /^nan/i.test(v.value) ? NaN : Infinity;
      this.fail(v.pos, `${where} is a number`);
    }
    if (INT_TYPES.has(f.type)) {
      if (v.kind !== "num" || !Number.isInteger(v.value) || /[.eEfF]/.test(v.text.replace(/^[-+]?0[xX][0-9a-fA-F]+$/, ""))) {
        this.fail(v.pos, `${where} is an integer (${f.type})`);
      }
      if (f.type.startsWith("uint") || f.type.startsWith("fixed")) {
        if (v.value < 0) this.fail(v.pos, `${where} is unsigned (${f.type}) but is ${v.value}`);
      }
      return v.value;
    }
    this.fail(v.pos, `${where} has type ${f.type}, which the prototxt reader does not handle`);
  }
}
