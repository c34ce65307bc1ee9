// Who an event is: the fields every record of it carries (its state, its index row, its dispatch
// message, its public view). Types only and one pure helper, so Node-side code (e2e seeding) can
// import it too.

/** The identity of one event, fixed when it is accepted. */
export interface EventIdentity {
  requestId: string;
  namespace: string;
  functionName: string;
  /** The version that runs: "$LATEST" or a published version number ("1", ...). */
  qualifier: string;
  /**
   * The alias the invocation named ("$DEFAULT", ...), when it named one; absent (or null, as the
   * index row has it) when it named a version, and on events accepted before aliases existed.
   */
  alias?: string | null;
  invokeType: string;
}

/** Exactly the identity fields of `source` (any other field it has is left out), in this order. */
export function eventIdentityOf(source: EventIdentity): EventIdentity {
  return {
    requestId: source.requestId,
    namespace: source.namespace,
    functionName: source.functionName,
    qualifier: source.qualifier,
    ...(typeof source.alias === "string" ? { alias: source.alias } : {}),
    invokeType: source.invokeType,
  };
}
