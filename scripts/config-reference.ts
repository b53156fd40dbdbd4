// `npm run docs`: writes docs/configuration.md, the reference of every gateway.yaml setting, from
// schemas/gateway.schema.json, so the reference cannot drift from what `npm run render` accepts.
//   tsx scripts/config-reference.ts [--check]
// --check writes nothing and exits 1 when docs/configuration.md is not what the schema gives
// (test/config-reference.test.ts runs the same comparison).
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SCHEMA_PATH = join(root, "schemas/gateway.schema.json");
export const REFERENCE_PATH = join(root, "docs/configuration.md");

type Schema = { [k: string]: unknown } & {
  $ref?: string;
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  oneOf?: Schema[];
  anyOf?: Schema[];
  required?: string[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
};

/** One row of the reference: a setting's dotted path and what the schema says about it. */
export interface Setting {
  path: string;
  type: string;
  required: boolean;
  default?: unknown;
  description: string;
}

function resolveRef(s: Schema, defs: Record<string, Schema>): Schema {
  if (!s.$ref) return s;
  const name = s.$ref.replace(/^#\/definitions\//, "");
  const target = defs[name];
  if (!target) throw new Error(`unknown $ref ${s.$ref}`);
  // The use site's own keywords (a default, a description) win over the definition's.
  const { $ref: _, ...own } = s;
  return { ...resolveRef(target, defs), ...own };
}

function typeOf(s: Schema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" \\| ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  const alts = s.oneOf ?? s.anyOf;
  if (alts && !s.type) return alts.map((a) => typeOf(a)).join(" or ");
  const t = Array.isArray(s.type) ? s.type.join(" or ") : (s.type ?? "any");
  if (t === "array" && s.items) return `list of ${typeOf(s.items)}`;
  if (t === "object" && s.additionalProperties && typeof s.additionalProperties === "object" && !s.properties) return `map of ${typeOf(s.additionalProperties)}`;
  const bounds: string[] = [];
  if (s.minimum !== undefined) bounds.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) bounds.push(`≤ ${s.maximum}`);
  return bounds.length ? `${t} (${bounds.join(", ")})` : t;
}

/** Every setting under `s`, depth first, in the schema's order. */
export function settings(s: Schema, defs: Record<string, Schema>, path = "", required = false, out: Setting[] = [], open = new Set<string>()): Setting[] {
  const r = resolveRef(s, defs);
  if (path) out.push({ path, type: typeOf(r), required, default: r.default, description: (r.description ?? "").trim() });
  // A definition that contains itself (ai-router's conditions nest) is listed once, at its first use.
  if (s.$ref && open.has(s.$ref)) return out;
  const inner = s.$ref ? new Set([...open, s.$ref]) : open;
  members(r, defs, path, out, inner);
  return out;
}

/** The settings inside an object (its properties, those of each alternative), a list's entries or a map's values. */
function members(r: Schema, defs: Record<string, Schema>, path: string, out: Setting[], open: Set<string>): void {
  const objects = [r, ...(r.oneOf ?? []), ...(r.anyOf ?? [])].map((a) => resolveRef(a, defs));
  const seen = new Set<string>();
  for (const o of objects) {
    for (const [k, v] of Object.entries(o.properties ?? {})) {
      if (seen.has(k)) continue;
      seen.add(k);
      settings(v, defs, path ? `${path}.${k}` : k, (o.required ?? []).includes(k), out, open);
    }
    for (const [sub, at] of [[o.items, `${path}[]`], [typeof o.additionalProperties === "object" ? o.additionalProperties : undefined, `${path}.<name>`]] as const) {
      if (!sub) continue;
      if (sub.$ref && open.has(sub.$ref)) continue;
      members(resolveRef(sub, defs), defs, at, out, sub.$ref ? new Set([...open, sub.$ref]) : open);
    }
  }
}

function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n+/g, " ");
}

export function renderReference(schemaText: string): string {
  const schema = JSON.parse(schemaText) as Schema & { definitions?: Record<string, Schema> };
  const defs = schema.definitions ?? {};
  const lines = [
    "# gateway.yaml reference",
    "",
    "<!-- Generated from schemas/gateway.schema.json by `npm run docs`. Edit the schema, not this file. -->",
    "",
    "Every setting `npm run render` accepts, section by section. A path such as `providers[].name` is",
    "the `name` of each entry of the `providers` list; `<name>` stands for a key you choose. Settings",
    "without a default are optional unless marked required. Sluice's own checks beyond the schema",
    "(names that must exist, keys that must be set in the environment) are explained in the",
    "descriptions; `npm run render` names the setting in every error.",
    "",
  ];
  if (schema.description) lines.push(schema.description.trim(), "");
  for (const [top, sub] of Object.entries(schema.properties ?? {})) {
    const rows = settings(sub, defs, top, (schema.required ?? []).includes(top));
    lines.push(`## \`${top}\``, "");
    const head = rows[0];
    if (head.description) lines.push(cell(head.description), "");
    lines.push("| setting | type | default | description |", "|---|---|---|---|");
    for (const row of rows) {
      const def = row.default === undefined ? (row.required ? "required" : "") : `\`${JSON.stringify(row.default)}\``;
      lines.push(`| \`${row.path}\` | ${cell(row.type)} | ${cell(def)} | ${cell(row.description)} |`);
    }
    lines.push("");
  }
  return lines.join("\n");
}

/** Settings the schema gives no description: the reference would say nothing about them. */
export function undocumented(schemaText: string): string[] {
  const schema = JSON.parse(schemaText) as Schema & { definitions?: Record<string, Schema> };
  return settings(schema, schema.definitions ?? {})
    .filter((s) => !s.description)
    .map((s) => s.path);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const usage = "usage: tsx scripts/config-reference.ts [--check]\n  --check  exit 1 if docs/configuration.md is out of date (writes nothing)\n  --help   this text";
  let values: { check?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({ options: { check: { type: "boolean" }, help: { type: "boolean", short: "h" } }, strict: true }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const text = renderReference(readFileSync(SCHEMA_PATH, "utf8"));
  if (values.check) {
    const current = readFileSync(REFERENCE_PATH, "utf8");
    if (current !== text) {
      console.error("docs/configuration.md is out of date: run `npm run docs`");
      process.exit(1);
    }
  } else {
    writeFileSync(REFERENCE_PATH, text);
    console.log(`wrote ${REFERENCE_PATH}`);
  }
}
