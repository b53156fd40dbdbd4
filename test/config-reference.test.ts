// docs/configuration.md is generated from schemas/gateway.schema.json (`npm run docs`): it must be
// current, and every setting the schema accepts must say what it does.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { REFERENCE_PATH, SCHEMA_PATH, renderReference, settings, undocumented } from "../scripts/config-reference.js";

const schemaText = readFileSync(SCHEMA_PATH, "utf8");

describe("the gateway.yaml reference", () => {
  it("is what the schema gives (run `npm run docs` after changing the schema)", () => {
    expect(readFileSync(REFERENCE_PATH, "utf8")).toBe(renderReference(schemaText));
  });

  it("describes every setting the schema accepts", () => {
    expect(undocumented(schemaText)).toEqual([]);
  });

  it("lists nested settings, list entries and defaults", () => {
    const schema = {
      definitions: { port: { type: "integer", minimum: 1, description: "a port" } },
      properties: {
        a: {
          type: "object",
          description: "A.",
          required: ["port"],
          properties: { port: { $ref: "#/definitions/port", default: 80 }, list: { type: "array", description: "L.", items: { type: "object", properties: { x: { enum: ["p", "q"], description: "X." } } } } },
        },
      },
    };
    const rows = settings(schema as never, schema.definitions as never);
    expect(rows.map((r) => [r.path, r.type, r.required, r.default])).toEqual([
      ["a", "object", false, undefined],
      ["a.port", "integer (≥ 1)", true, 80],
      ["a.list", "list of object", false, undefined],
      ["a.list[].x", '"p" \\| "q"', false, undefined],
    ]);
    expect(rows[1].description).toBe("a port");
  });
});
