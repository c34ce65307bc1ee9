// The agent answers only its own instance Durable Object: the object generates a random token
// for every container boot and hands it over in the container's environment (AFP_AGENT_TOKEN).
import { createHash, timingSafeEqual } from "node:crypto";

/** The environment variable that carries this boot's token. */
export const AGENT_TOKEN_VARIABLE = "AFP_AGENT_TOKEN";
/** Shortest token accepted (the platform sends 64 hex digits); a shorter or absent one refuses all. */
export const MIN_AGENT_TOKEN_CHARS = 32;
const BEARER_PREFIX = "Bearer ";

function digest(text) {
  return createHash("sha256").update(text, "utf8").digest();
}

/**
 * Reads the token from the environment and removes it (handler processes get an environment built
 * from scratch, so it never reaches them). Returns the check of an Authorization header: constant
 * time (SHA-256 digests compared with timingSafeEqual); always false without a usable token.
 */
export function agentTokenCheck(environment) {
  const token = environment[AGENT_TOKEN_VARIABLE] ?? "";
  delete environment[AGENT_TOKEN_VARIABLE];
  if (token.length < MIN_AGENT_TOKEN_CHARS) {
    console.error(`${AGENT_TOKEN_VARIABLE} is missing or too short: every request is refused`);
    return () => false;
  }
  const expected = digest(token);
  return (header) => {
    if (typeof header !== "string" || !header.startsWith(BEARER_PREFIX)) return false;
    return timingSafeEqual(digest(header.slice(BEARER_PREFIX.length)), expected);
  };
}
