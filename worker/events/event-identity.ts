// Who an event is: the fields every record of it carries (its state, its index row, its dispatch
// message, its public view). Types only and one pure helper, so Node-side code (e2e seeding) can
// import it too.

/** The identity of one event, fixed when it is accepted. */
export interface EventIdentity {
  requestId: string;
  namespace: string;
  functionName: string;
  qualifier: string;
  invokeType: string;
}

/** Exactly the identity fields of `source` (any other field it has is left out), in this order. */
export function eventIdentityOf(source: EventIdentity): EventIdentity {
  return {
    requestId: source.requestId,
    namespace: source.namespace,
    functionName: source.functionName,
    qualifier: source.qualifier,
    invokeType: source.invokeType,
  };
}
