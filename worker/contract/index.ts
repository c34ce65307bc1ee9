// The container contract (see agent-contract.ts).
export * from "./agent-contract";
