// Mock LLM providers for Sluice's tests: real wire formats, scripted answers, fault switches, recorded streams.
export * from "./common.js";
export { startMock, startAllMocks, startMockRouter, switchesFromHeaders, splitPositions, PROVIDERS, MockState, ProviderHandler } from "./server.js";
export type { MockServer, AllMocks } from "./server.js";
export { recordedStreams, RECORDED_TEXT, RECORDED_TOOL, RECORDED_CLOCK } from "./recorded.js";
export type { RecordedStream } from "./recorded.js";
