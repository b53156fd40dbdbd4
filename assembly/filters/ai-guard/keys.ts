// Filter-state keys of ai-guard's answer side (read by the access log only, so they live with the
// filter rather than in lib/keys.ts).
export const GUARD_RESPONSE_VERDICT = "sluice.guard_response_verdict";
export const GUARD_RESPONSE_CATEGORIES = "sluice.guard_response_categories";
