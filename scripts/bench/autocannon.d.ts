// autocannon ships no types; the benchmark uses its programmatic API (scripts/bench/gateway.ts).
declare module "autocannon";
