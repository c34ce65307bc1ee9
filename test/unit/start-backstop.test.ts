// The start backstop of an event allows for shipping its code package: a slow ship of a big package
// (up to CODE_SHIP_TIMEOUT_MS) is ended by the instance with its cause, before the backstop fires.
import { describe, expect, it } from "vitest";
import { CODE_SHIP_TIMEOUT_MS, nextDeadline, START_TIMEOUT_MS } from "../../worker/events/event-deadlines";
import type { EventState } from "../../worker/events/event-machine";
import { CODE_SHIP_TIMEOUT_MS as CLIENT_SHIP_TIMEOUT_MS } from "../../worker/instances/agent-client";

describe("the start backstop", () => {
  it("fires only after a container start, the code's shipping and the function's timeout", () => {
    const state = { phase: "starting", claimedAt: 1_000, function: { timeoutSeconds: 3 } } as unknown as EventState;
    const deadline = nextDeadline(state, 5_000, undefined);
    expect(deadline.kind).toBe("start-backstop");
    expect(deadline.at).toBe(1_000 + START_TIMEOUT_MS + CODE_SHIP_TIMEOUT_MS + 3_000);
    // The instance's ship limit is the one the backstop allows for.
    expect(CLIENT_SHIP_TIMEOUT_MS).toBe(CODE_SHIP_TIMEOUT_MS);
  });
});
