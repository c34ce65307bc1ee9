// The container contract: what crosses the boundary between an instance (worker/instances) and the
// runtime agent of its container (containers/runtime/agent), as zod schemas checked on both sides.
// The agent imports them from its bundle, containers/runtime/agent/contract.gen.mjs, built from this
// folder by `npm run contract:build` (and checked current by `npm run contract:check`).
// The protocol itself is written down in containers/runtime/agent/PROTOCOL.md.
export * from "./agent-api";
export * from "./agent-records";
export * from "./execution-spec";
