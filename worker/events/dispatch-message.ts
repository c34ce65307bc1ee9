import { z } from "zod";
import { eventIdentityOf } from "./event-identity";
import type { EventState } from "./event-machine";
import { invocationTagsSchema } from "./event-tags";

/** The message on the dispatch queue: one accepted event waiting for an instance. */
export const dispatchMessageSchema = z.object({
  requestId: z.uuid(),
  namespace: z.string().min(1),
  functionName: z.string().min(1),
  qualifier: z.string().min(1),
  /** The alias the invocation named (absent when it named a version, and in older messages). */
  alias: z.string().min(1).max(64).nullish(),
  invokeType: z.string().min(1),
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
