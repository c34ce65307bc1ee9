// The shape of one fuzz case, the fixtures every case refers to, and how a case authenticates.
import fc from "fast-check";
import type { BodySpec, Judged } from "./fuzz-fields";

/** The namespace of the namespace-scoped key, with one function in it. */
export const SCOPED_NAMESPACE = "fuzz-scoped";
/** A namespace the scoped key cannot reach, with one function in it. */
export const FOREIGN_NAMESPACE = "fuzz-admin";
/** The fixture function of each fixture namespace. */
export const FIXTURE_FUNCTION: Readonly<Record<string, string>> = {
  [SCOPED_NAMESPACE]: "fuzz-fn",
  [FOREIGN_NAMESPACE]: "fuzz-other",
};
/** A function name that exists in no namespace. */
export const MISSING_FUNCTION = "fz-missing";
/** A finished event of the scoped namespace's function. */
export const OWN_ENDED_EVENT = "5eed0000-0000-4000-8000-000000000001";
/** A queued event of the foreign namespace's function (terminating it would change it). */
export const FOREIGN_QUEUED_EVENT = "5eed0000-0000-4000-8000-000000000002";
/** Namespace and function of each fixture event. */
export const FIXTURE_EVENT: Readonly<Record<string, { namespace: string; functionName: string }>> = {
  [OWN_ENDED_EVENT]: { namespace: SCOPED_NAMESPACE, functionName: "fuzz-fn" },
  [FOREIGN_QUEUED_EVENT]: { namespace: FOREIGN_NAMESPACE, functionName: "fuzz-other" },
};

/** Replaced when a case is sent: the scoped key's SecretId (created by the test). */
export const SCOPED_ID_TOKEN = "@scoped-id@";
/** Replaced when a case is sent: the SecretId of a key that only serves as a revocation target. */
export const VICTIM_ID_TOKEN = "@victim-id@";
/** Replaced when a case is sent: the administrator's SecretKey (never hard-coded). */
export const ADMIN_KEY_TOKEN = "@admin-key@";

/** Who sends a well-authenticated request: the administrator (every namespace) or the scoped key. */
export type Caller = "admin" | "scoped";

/** Ways a TC3-HMAC-SHA256 Authorization can be wrong while looking almost right. */
export const TC3_TAMPERS = [
  "service-not-scf",
  "scope-date-mismatch",
  "host-not-signed",
  "content-type-not-signed",
  "upper-case-signed-headers",
  "random-signature",
  "stale-timestamp",
  "future-timestamp",
  "missing-timestamp",
  "non-numeric-timestamp",
  "wrong-secret-key",
  "unknown-secret-id",
  "wrong-algorithm",
  "body-changed-after-signing",
] as const;
/** One way of tampering with a TC3 signature. */
export type Tc3Tamper = (typeof TC3_TAMPERS)[number];

/** How a case authenticates. */
export type AuthSpec =
  | { kind: "bearer"; caller: Caller }
  | { kind: "tc3"; caller: Caller }
  | { kind: "tampered"; caller: Caller; tamper: Tc3Tamper; skewSeconds: number }
  | { kind: "header"; header: string | undefined };

/** Authorization values that identify nobody (tokens are replaced when sent). */
export const BROKEN_AUTHORIZATIONS: readonly (string | undefined)[] = [
  undefined,
  "",
  "Basic YWRtaW46YWRtaW4=",
  "Bearer",
  "Bearer AKIDintegration",
  "Bearer :",
  "Bearer AKIDintegration:",
  "Bearer AKIDintegration:wrong-key",
  `Bearer AKIDintegration:${ADMIN_KEY_TOKEN} extra`,
  `Bearer AKIDintegration:${ADMIN_KEY_TOKEN}x`,
  `Bearer ${SCOPED_ID_TOKEN}:${ADMIN_KEY_TOKEN}`,
  `Bearer ${VICTIM_ID_TOKEN}:${ADMIN_KEY_TOKEN}`,
  "Bearer AKIDnosuchkey:whatever",
  "Bearer \u00f1:\u00fc",
  "TC3-HMAC-SHA256 nonsense",
  "TC3-HMAC-SHA256 Credential=AKIDintegration/2024-01-01/scf/tc3_request, SignedHeaders=content-type;host, Signature=zz",
  "TC3-HMAC-SHA256 Credential=AKIDintegration/2024-01-01/scf/tc3_request, SignedHeaders=, Signature=",
  "x".repeat(4000),
];

/** Fewest seconds a stale or future timestamp is off by: past the 300 s window by more than a slow request. */
const MIN_SKEW_SECONDS = 310;
/** Most seconds a stale or future timestamp is off by (about 400 days). */
const MAX_SKEW_SECONDS = 400 * 24 * 3600;

/**
 * The caller whose namespaces a case's other parts are judged against: the signer of a well-formed
 * or tampered signature, and the administrator (the most dangerous) for a broken header.
 */
export function judgedCaller(auth: AuthSpec): Caller {
  return auth.kind === "header" ? "admin" : auth.caller;
}

/** Credentials: mostly well formed (so requests reach validation), sometimes broken. */
export const authArb: fc.Arbitrary<Judged<AuthSpec>> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .constantFrom<Caller>("admin", "admin", "scoped")
      .map((caller) => ({ value: { kind: "bearer" as const, caller }, bad: [] })),
  },
  {
    weight: 4,
    arbitrary: fc
      .constantFrom<Caller>("admin", "scoped")
      .map((caller) => ({ value: { kind: "tc3" as const, caller }, bad: [] })),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        caller: fc.constantFrom<Caller>("admin", "scoped"),
        tamper: fc.constantFrom(...TC3_TAMPERS),
        skewSeconds: fc.integer({ min: MIN_SKEW_SECONDS, max: MAX_SKEW_SECONDS }),
      })
      .map((value) => ({ value: { kind: "tampered" as const, ...value }, bad: [`TC3 ${value.tamper}`] })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...BROKEN_AUTHORIZATIONS).map((header) => ({
      value: { kind: "header" as const, header },
      bad: [`Authorization ${header === undefined ? "missing" : JSON.stringify(header.slice(0, 40))}`],
    })),
  },
);

/** One generated request, with everything that is wrong with it. */
export interface FuzzCase {
  /** The route as the app's route table names it, e.g. `POST /v1/namespaces/:namespace/functions`. */
  route: string;
  method: string;
  /** Path and query, URL-encoded (tokens are replaced when sent). */
  target: string;
  auth: AuthSpec;
  body: BodySpec;
  /** Extra request headers (X-TC-* for the Tencent endpoint, Last-Event-ID, ...). */
  headers: Record<string, string>;
  /** Answered in Tencent's envelope (HTTP 200) rather than the REST one. */
  tencent: boolean;
  /** What is wrong with the request; never empty. */
  malformations: string[];
  /** The Tencent error code the request must get, when it is determined by one malformation. */
  expectedCode?: string;
}
