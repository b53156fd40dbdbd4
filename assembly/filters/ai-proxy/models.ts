// GET /v1/models and GET /v1/models/{id}: the models a client may ask for, from the instances'
// configuration (their model, models without wildcards, and model_map keys), in the shape of the
// client's API: OpenAI's ({"object":"list","data":[{"id","object":"model","created","owned_by"}]})
// or, when the request carries anthropic-version, Anthropic's ({"data":[{"type":"model","id",
// "display_name","created_at"}],"has_more","first_id","last_id"}), or for Gemini's own API
// (GET /v1beta/models) Gemini's ({"models":[{"name":"models/<id>","displayName",
// "supportedGenerationMethods"}]}). The gateway knows no release dates: created is 0 and
// created_at the epoch. Lists are written once per configuration.
import { jsonString } from "../../lib/json";
import { CLIENT_ANTHROPIC, CLIENT_GEMINI } from "./client";

/** The listed models, each once, with the provider of the first instance that serves it. */
export class ModelList {
  ids: Array<string> = [];
  owners: Array<string> = [];
  /** Per id: the instances (indices) that serve it, for a virtual key's pool scope (scope.ts). */
  servers: Array<Array<i32>> = [];
  openai: ArrayBuffer = new ArrayBuffer(0);
  anthropic: ArrayBuffer = new ArrayBuffer(0);
  gemini: ArrayBuffer = new ArrayBuffer(0);

  add(id: string, owner: string, instance: i32 = -1): void {
    if (id.endsWith("*")) return;
    const i = this.ids.indexOf(id);
    if (i >= 0) {
      if (instance >= 0) this.servers[i].push(instance);
      return;
    }
    this.ids.push(id);
    this.owners.push(owner);
    const by = new Array<i32>();
    if (instance >= 0) by.push(instance);
    this.servers.push(by);
  }

  /** The list of the ids `keep` says yes to, sealed (a virtual key's scoped list). */
  only(keep: Array<bool>): ModelList {
    const out = new ModelList();
    for (let i = 0; i < this.ids.length; i++) {
      if (!keep[i]) continue;
      out.ids.push(this.ids[i]);
      out.owners.push(this.owners[i]);
      out.servers.push(this.servers[i]);
    }
    out.seal();
    return out;
  }

  /** Writes both lists; called once the instances are read. */
  seal(): void {
    let o = '{"object":"list","data":[';
    let a = '{"data":[';
    let g = '{"models":[';
    for (let i = 0; i < this.ids.length; i++) {
      if (i) {
        o += ",";
        a += ",";
        g += ",";
      }
      o += openaiModel(this.ids[i], this.owners[i]);
      a += anthropicModel(this.ids[i]);
      g += geminiModel(this.ids[i]);
    }
    o += "]}";
    g += "]}";
    this.gemini = String.UTF8.encode(g);
    const n = this.ids.length;
    a += '],"has_more":false,"first_id":' + (n ? jsonString(this.ids[0]) : "null") + ',"last_id":' + (n ? jsonString(this.ids[n - 1]) : "null") + "}";
    this.openai = String.UTF8.encode(o);
    this.anthropic = String.UTF8.encode(a);
  }

  /** The whole list in the client's shape. */
  list(client: i32): ArrayBuffer {
    return client == CLIENT_ANTHROPIC ? this.anthropic : client == CLIENT_GEMINI ? this.gemini : this.openai;
  }

  /** One model in the client's shape, or null when the gateway does not list it. */
  one(id: string, client: i32): ArrayBuffer | null {
    // Gemini names a model as its resource, models/<id>.
    if (client == CLIENT_GEMINI && id.startsWith("models/")) id = id.substring(7);
    const i = this.ids.indexOf(id);
    if (i < 0) return null;
    if (client == CLIENT_ANTHROPIC) return String.UTF8.encode(anthropicModel(id));
    if (client == CLIENT_GEMINI) return String.UTF8.encode(geminiModel(id));
    return String.UTF8.encode(openaiModel(id, this.owners[i]));
  }
}

function openaiModel(id: string, owner: string): string {
  return '{"id":' + jsonString(id) + ',"object":"model","created":0,"owned_by":' + jsonString(owner) + "}";
}

function anthropicModel(id: string): string {
  return '{"type":"model","id":' + jsonString(id) + ',"display_name":' + jsonString(id) + ',"created_at":"1970-01-01T00:00:00Z"}';
}

function geminiModel(id: string): string {
  return '{"name":' + jsonString("models/" + id) + ',"displayName":' + jsonString(id) + ',"supportedGenerationMethods":["generateContent","streamGenerateContent","countTokens"]}';
}
