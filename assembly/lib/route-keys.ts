// Filter-state keys written by ai-router beside keys.POOL and keys.ROUTE_RULE (to be merged into
// keys.ts). Stored by Envoy as wasm.<key>; the access log reads %FILTER_STATE(wasm.<key>:PLAIN)%.

/** The model the matched rule asks for instead of the client's (absent: keep the client's). */
export const ROUTE_MODEL = "sluice.route_model";
/** The classifier's task type of the prompt: code, math, reasoning, summarize, extract, translate, chat. */
export const TASK_TYPE = "sluice.task_type";
/** The classifier's complexity score of the prompt, 0.00 to 1.00. */
export const COMPLEXITY = "sluice.complexity";
