// GET /v1/models and GET /v1/models/{id}: the models a client may ask for, from the instances'
// configuration (their model, models without wildcards, and model_map keys), in the shape of the
// client's API: OpenAI's ({"object":"list","data":[{"id","object":"model","created","owned_by"}]})
// or, when the request carries anthropic-version, Anthropic's ({"data":[{"type":"model","id",
// "display_name","created_at"}],"has_more","first_id","last_id"}). The gateway knows no release
// dates: created is 0 and created_at the epoch. Lists are written once per configuration.
import { jsonString } from "../../lib/json";

/** The listed models, each once, with the provider of the first instance that serves it. */
export class ModelList {
  ids: Array<string> = [];
  owners: Array<string> = [];
  openai: ArrayBuffer = new ArrayBuffer(0);
  anthropic: ArrayBuffer = new ArrayBuffer(0);

  add(id: string, owner: string): void {
    if (id.endsWith("*") || this.ids.includes(id)) return;
    this.ids.push(id);
    this.owners.push(owner);
  }

  /** Writes both lists; called once the instances are read. */
  seal(): void {
    let o = '{"object":"list","data":[';
    let a = '{"data":[';
    for (let i = 0; i < this.ids.length; i++) {
      if (i) {
        o += ",";
        a += ",";
      }
      o += openaiModel(this.ids[i], this.owners[i]);
      a += anthropicModel(this.ids[i]);
    }
    o += "]}";
    const n = this.ids.length;
    a += '],"has_more":false,"first_id":' + (n ? jsonString(this.ids[0]) : "null") + ',"last_id":' + (n ? jsonString(this.ids[n - 1]) : "null") + "}";
    this.openai = String.UTF8.encode(o);
    this.anthropic = String.UTF8.encode(a);
  }

  /** One model in the client's shape, or null when the gateway does not list it. */
  one(id: string, anthropic: bool): ArrayBuffer | null {
    const i = this.ids.indexOf(id);
    if (i < 0) return null;
    return String.UTF8.encode(anthropic ? anthropicModel(id) : openaiModel(id, this.owners[i]));
  }
}

function openaiModel(id: string, owner: string): string {
  return '{"id":' + jsonString(id) + ',"object":"model","created":0,"owned_by":' + jsonString(owner) + "}";
}

function anthropicModel(id: string): string {
  return '{"type":"model","id":' + jsonString(id) + ',"display_name":' + jsonString(id) + ',"created_at":"1970-01-01T00:00:00Z"}';
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return -1;
}

/**
 * A model id from the path segment after /v1/models/ (the SDKs percent-encode it, so a name with
 * a slash arrives as %2F); null when the encoding is broken. The id is only compared with the
 * configured names, never sent on.
 */
export function modelIdFromPath(segment: string): string | null {
  if (segment.indexOf("%") < 0) return segment;
  const bytes = String.UTF8.encode(segment);
  const src = Uint8Array.wrap(bytes);
  const out = new Uint8Array(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = <i32>src[i];
    if (c != 0x25) {
      out[n++] = <u8>c;
      continue;
    }
    if (i + 2 >= src.length) return null;
    const hi = hexValue(<i32>src[i + 1]);
    const lo = hexValue(<i32>src[i + 2]);
    if (hi < 0 || lo < 0) return null;
    out[n++] = <u8>((hi << 4) | lo);
    i += 2;
  }
  return String.UTF8.decode(out.buffer.slice(0, n));
}
