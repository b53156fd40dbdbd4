// Where a text sits, for the injection detector: the operator's instructions (system and developer
// messages, Anthropic `system`, Responses `instructions`, Gemini `systemInstruction`) are not scored
// (they are the application's own text, and "never reveal your system prompt" is normal there);
// tool results and documents are data a model reads, where planted instructions are the attack, so
// their score counts TOOL_FACTOR times; everything else (user and assistant turns, tool call
// arguments) counts once. request.ts lists the texts; this marks the ones that are not user text,
// reading the same parsed body (no second parse).
import { JsonValue } from "../../lib/json";
import { K_CHAT, K_MESSAGES, K_RESPONSES, K_GEMINI } from "./request";

export const TOOL_FACTOR: f64 = 1.5;

export class Origins {
  operator: Set<usize> = new Set();
  data: Set<usize> = new Set();

  /** The factor a text's injection score is multiplied by (0: not scored). */
  factor(v: JsonValue): f64 {
    const k = changetype<usize>(v);
    if (this.operator.has(k)) return 0;
    return this.data.has(k) ? TOOL_FACTOR : 1;
  }
}

function mark(v: JsonValue | null, into: Set<usize>): void {
  if (v === null) return;
  if (v.isString()) into.add(changetype<usize>(v));
  else if ((v.isArray() || v.isObject()) && !v.isNumberSpan()) for (let i = 0, n = v.length; i < n; i++) mark(v.at(i), into);
}

export function injectionOrigins(kind: i32, req: JsonValue): Origins {
  const o = new Origins();
  if (kind == K_CHAT) {
    const ms = req.get("messages");
    if (ms !== null && ms.isArray()) for (let i = 0, n = ms.length; i < n; i++) {
      const m = ms.at(i);
      if (!m.isObject()) continue;
      const role = m.getString("role");
      if (role == "system" || role == "developer") mark(m.get("content"), o.operator);
      else if (role == "tool" || role == "function") mark(m.get("content"), o.data);
    }
  } else if (kind == K_MESSAGES) {
    mark(req.get("system"), o.operator);
    const ms = req.get("messages");
    if (ms !== null && ms.isArray()) for (let i = 0, n = ms.length; i < n; i++) {
      const c = ms.at(i).isObject() ? ms.at(i).get("content") : null;
      if (c === null || !c.isArray()) continue;
      for (let k = 0, m = c.length; k < m; k++) {
        const b = c.at(k);
        if (!b.isObject()) continue;
        const t = b.getString("type");
        if (t == "tool_result") mark(b.get("content"), o.data);
        else if (t == "document") mark(b.get("source"), o.data);
      }
    }
  } else if (kind == K_RESPONSES) {
    mark(req.get("instructions"), o.operator);
    const input = req.get("input");
    if (input !== null && input.isArray()) for (let i = 0, n = input.length; i < n; i++) {
      const m = input.at(i);
      if (!m.isObject()) continue;
      const t = m.getString("type");
      const role = m.getString("role");
      if ((t === null || t == "message") && (role == "system" || role == "developer")) mark(m.get("content"), o.operator);
      else if (t == "function_call_output" || t == "custom_tool_call_output") mark(m.get("output"), o.data);
    }
  } else if (kind == K_GEMINI) {
    geminiOrigins(req, o);
  }
  return o;
}

function geminiOrigins(req: JsonValue, o: Origins): void {
  const wrapped = req.get("generateContentRequest");
  if (wrapped !== null && wrapped.isObject()) geminiOrigins(wrapped, o);
  mark(req.get("systemInstruction"), o.operator);
  const contents = req.get("contents");
  if (contents === null || !contents.isArray()) return;
  for (let i = 0, n = contents.length; i < n; i++) {
    const ps = contents.at(i).isObject() ? contents.at(i).get("parts") : null;
    if (ps === null || !ps.isArray()) continue;
    for (let k = 0, m = ps.length; k < m; k++) {
      const p = ps.at(k);
      if (p.isObject()) mark(p.get("functionResponse"), o.data);
    }
  }
}
