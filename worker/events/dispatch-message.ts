import { z } from "zod";
import { eventIdentityOf } from "./event-identity";
import type { EventState } from "./event-machine";
import { invocationTagsSchema } from "./event-tags";

/** An event's identity (EventIdentity) as the queue's messages carry it. */
const identityShape = {
  requestId: z.uuid(),
  namespace: z.string().min(1),
  functionName: z.string().min(1),
  qualifier: z.string().min(1),
  /** The alias the invocation named (absent when it named a version, and in older messages). */
  alias: z.string().min(1).max(64).nullish(),
  invokeType: z.string().min(1),
};

/** The message on the dispatch queue: one accepted event waiting for an instance. */
export const dispatchMessageSchema = z.object({
  ...identityShape,
  invokedAt: z.number().int(),
  maxConcurrency: z.number().int().min(1),
  /** The event's memorySize (MB): its scheduler runs it in that size's container class (absent in older messages). */
  memoryMb: z.number().int().min(1).optional(),
  /** True for an event of an image function: its scheduler runs it in the image class (absent: code). */
  image: z.boolean().optional(),
  /** The invocation's tags (absent for none, and in older messages): the consumer's index row carries them. */
  tags: invocationTagsSchema.optional(),
});
/** A parsed dispatch message. */
export type DispatchMessage = z.infer<typeof dispatchMessageSchema>;

/** The dispatch message of an event: its identity, when it was invoked, its function's concurrency cap and memory size. */
export function dispatchMessageOf(state: EventState): DispatchMessage {
  return {
    ...eventIdentityOf(state),
    invokedAt: state.invokedAt,
    maxConcurrency: state.function.maxConcurrency,
    memoryMb: state.function.memoryMb,
    ...(state.function.image !== undefined ? { image: true } : {}),
    ...(state.tags !== undefined ? { tags: state.tags } : {}),
  };
}

/**
 * The message an ended event sends its index row in (EventIndexDuty, ARCHITECTURE.md "Scaling"):
 * on its function's dispatch queue, whose consumer writes it with the other rows of its batch, many
 * rows per D1 statement, instead of one statement per event. Told apart from a dispatch message by
 * `kind`.
 */
export const INDEX_ROW_MESSAGE_KIND = "index-row";

/** An index row as the queue carries it (EventIndexEntry). */
const indexEntrySchema = z.object({
  ...identityShape,
  status: z.string().min(1),
  statusCode: z.number().int().nullable(),
  phase: z.string().min(1),
  // The numbers as the event's state has them: a row is never refused for its values (a refused
  // row would leave the event listed as running), only for its shape.
  startTime: z.number(),
  endTime: z.number().nullable(),
  durationMs: z.number().nullable(),
  version: z.number().int().min(1),
  tags: z.record(z.string(), z.string()).nullish(),
  progressPercent: z.number().nullish(),
  progressMessage: z.string().nullish(),
  progressAt: z.number().nullish(),
});

/** An ended event's index row on the dispatch queue. */
export const indexRowMessageSchema = z.object({
  kind: z.literal(INDEX_ROW_MESSAGE_KIND),
  entry: indexEntrySchema,
});
/** A parsed index-row message. */
export type IndexRowMessage = z.infer<typeof indexRowMessageSchema>;

/** True when a queued body claims to be an index-row message (it is then checked against its schema). */
export function isIndexRowBody(body: unknown): boolean {
  return typeof body === "object" && body !== null && (body as { kind?: unknown }).kind === INDEX_ROW_MESSAGE_KIND;
}
