// The shape of one event index row, apart from the D1 code that writes it (event-index.ts), so that
// tests running in Node (e2e seeding through /_diagnostics/seed-index) can use the same type.

/** One row of the D1 event index, as the writer needs it. */
export interface EventIndexEntry {
  requestId: string;
  namespace: string;
  functionName: string;
  qualifier: string;
  invokeType: string;
  status: string;
  statusCode: number | null;
  phase: string;
  startTime: number;
  endTime: number | null;
  durationMs: number | null;
  version: number;
}
