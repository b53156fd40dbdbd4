// Reads the function signatures of a module's imports and exports from its binary (type, import,
// function and export sections): WebAssembly.Module.imports()/exports() do not report types in Node 20.

export interface ImportSig {
  module: string;
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
  params: string[];
  results: string[];
}

const VALTYPES: Record<number, string> = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128", 0x70: "funcref", 0x6f: "externref" };

export interface ExportSig {
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
  params: string[];
  results: string[];
}

export function readImports(bytes: Uint8Array): ImportSig[] {
  return readSignatures(bytes).imports;
}

/** The exports in the order of the export section (cpp-host BytecodeUtil::getAbiVersion reads it so). */
export function readExports(bytes: Uint8Array): ExportSig[] {
  return readSignatures(bytes).exports;
}

const KINDS = ["function", "table", "memory", "global", "tag"] as const;

function readSignatures(bytes: Uint8Array): { imports: ImportSig[]; exports: ExportSig[] } {
  let pos = 8; // magic + version
  const u32 = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++];
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
  };
  const name = (): string => {
    const len = u32();
    const s = Buffer.from(bytes.buffer, bytes.byteOffset + pos, len).toString("utf8");
    pos += len;
    return s;
  };
  const limits = () => {
    const flags = bytes[pos++];
    u32();
    if (flags & 1) u32();
  };
  const types: Array<{ params: string[]; results: string[] }> = [];
  const imports: ImportSig[] = [];
  const importedFuncs: Array<{ params: string[]; results: string[] }> = [];
  const funcTypes: number[] = [];
  const exports: ExportSig[] = [];
  while (pos < bytes.length) {
    const id = bytes[pos++];
    const size = u32();
    const end = pos + size;
    if (id === 1) {
      const count = u32();
      for (let i = 0; i < count; i++) {
        pos++; // 0x60
        const params = Array.from({ length: u32() }, () => VALTYPES[bytes[pos++]] ?? "?");
        const results = Array.from({ length: u32() }, () => VALTYPES[bytes[pos++]] ?? "?");
        types.push({ params, results });
      }
    } else if (id === 2) {
      const count = u32();
      for (let i = 0; i < count; i++) {
        const module = name();
        const field = name();
        const kind = bytes[pos++];
        if (kind === 0) {
          const t = types[u32()] ?? { params: [], results: [] };
          importedFuncs.push(t);
          imports.push({ module, name: field, kind: "function", ...t });
        } else if (kind === 1) {
          pos++; // reftype
          limits();
          imports.push({ module, name: field, kind: "table", params: [], results: [] });
        } else if (kind === 2) {
          limits();
          imports.push({ module, name: field, kind: "memory", params: [], results: [] });
        } else if (kind === 3) {
          pos += 2; // valtype, mutability
          imports.push({ module, name: field, kind: "global", params: [], results: [] });
        } else {
          pos++; // tag attribute
          u32();
          imports.push({ module, name: field, kind: "tag", params: [], results: [] });
        }
      }
    } else if (id === 3) {
      const count = u32();
      for (let i = 0; i < count; i++) funcTypes.push(u32());
    } else if (id === 7) {
      const count = u32();
      for (let i = 0; i < count; i++) {
        const field = name();
        const kind = KINDS[bytes[pos++]] ?? "tag";
        const index = u32();
        let t = { params: [] as string[], results: [] as string[] };
        if (kind === "function") {
          // Function indices count the imported functions first.
          t = index < importedFuncs.length ? importedFuncs[index] : types[funcTypes[index - importedFuncs.length]] ?? t;
        }
        exports.push({ name: field, kind, ...t });
      }
      return { imports, exports };
    }
    pos = end;
  }
  return { imports, exports };
}
