// Protobuf wire encoding of the few Envoy messages that proxy_get_property hands out whole:
// envoy.config.core.v3.Metadata (metadata, xds.*_metadata), Node (xds.node) and Locality
// (upstream.locality), with google.protobuf.Struct / Value / ListValue inside them. Envoy's
// serializeValue (source/extensions/common/wasm/context.cc) answers a kMessage CEL value with
// Message::SerializeToString, so a module reading these gets protobuf bytes. Field numbers are the
// ones in data-plane-api envoy/config/core/v3/base.proto and google/protobuf/struct.proto.
// Map entries are written in sorted key order (C++ leaves map order unspecified; sorted is one of
// the orders Envoy may produce, and it makes the bytes stable for tests).

/** A JSON value as google.protobuf.Value holds it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A google.protobuf.Struct as JSON. */
export type JsonObject = { [key: string]: Json };
/** envoy.config.core.v3.Metadata.filter_metadata: namespace -> Struct. */
export type FilterMetadata = Record<string, JsonObject>;

export interface Locality {
  region?: string;
  zone?: string;
  subZone?: string;
}

export interface NodeInfo {
  id?: string;
  cluster?: string;
  metadata?: JsonObject;
  locality?: Locality;
}

class Writer {
  private parts: Buffer[] = [];

  varint(n: number | bigint): this {
    let v = BigInt.asUintN(64, BigInt(n));
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.parts.push(Buffer.from(out));
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  bytes(field: number, b: Buffer): this {
    this.tag(field, 2).varint(b.length);
    this.parts.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, "utf8"));
  }

  /** A proto3 singular string: omitted when empty. */
  optString(field: number, s: string | undefined): this {
    return s ? this.string(field, s) : this;
  }

  double(field: number, d: number): this {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(d);
    this.tag(field, 1);
    this.parts.push(b);
    return this;
  }

  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** google.protobuf.Value: null_value 1, number_value 2, string_value 3, bool_value 4,
 * struct_value 5, list_value 6 (a oneof: the set member is written even at its default). */
export function encodeValue(v: Json): Buffer {
  const w = new Writer();
  if (v === null) w.tag(1, 0).varint(0);
  else if (typeof v === "number") w.double(2, v);
  else if (typeof v === "string") w.string(3, v);
  else if (typeof v === "boolean") w.tag(4, 0).varint(v ? 1 : 0);
  else if (Array.isArray(v)) w.bytes(6, encodeList(v));
  else w.bytes(5, encodeStruct(v));
  return w.done();
}

function encodeList(items: Json[]): Buffer {
  const w = new Writer();
  for (const item of items) w.bytes(1, encodeValue(item));
  return w.done();
}

/** A map entry: key 1, value 2, both always written (C++ MapEntry serialization). */
function mapEntry(key: string, value: Buffer): Buffer {
  return new Writer().string(1, key).bytes(2, value).done();
}

/** google.protobuf.Struct: map<string, Value> fields = 1. */
export function encodeStruct(o: JsonObject): Buffer {
  const w = new Writer();
  for (const k of Object.keys(o).sort()) w.bytes(1, mapEntry(k, encodeValue(o[k])));
  return w.done();
}

/** envoy.config.core.v3.Metadata: map<string, Struct> filter_metadata = 1 (typed_filter_metadata,
 * field 2, is never set by the host). */
export function encodeMetadata(m: FilterMetadata): Buffer {
  const w = new Writer();
  for (const ns of Object.keys(m).sort()) w.bytes(1, mapEntry(ns, encodeStruct(m[ns])));
  return w.done();
}

/** envoy.config.core.v3.Locality: region 1, zone 2, sub_zone 3. */
export function encodeLocality(l: Locality): Buffer {
  return new Writer().optString(1, l.region).optString(2, l.zone).optString(3, l.subZone).done();
}

/** Envoy's user_agent_name for its own node (source/server: "envoy"). */
export const USER_AGENT_NAME = "envoy";

/** envoy.config.core.v3.Node as Envoy's LocalInfo holds it: id 1, cluster 2, metadata 3,
 * locality 4, user_agent_name 6. Envoy also fills user_agent_build_version (8) and extensions (9)
 * with its own build; the host has no build to describe and leaves them out. */
export function encodeNode(n: NodeInfo): Buffer {
  const w = new Writer().optString(1, n.id).optString(2, n.cluster);
  if (n.metadata && Object.keys(n.metadata).length) w.bytes(3, encodeStruct(n.metadata));
  if (n.locality) w.bytes(4, encodeLocality(n.locality));
  return w.string(6, USER_AGENT_NAME).done();
}
