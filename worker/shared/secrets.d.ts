// Worker secrets are not in wrangler.toml, so `wrangler types` cannot see them; they are declared
// here and merged into the generated Env.
interface Env {
  /** Development / administrator credentials (all namespaces); `npm start` seeds them. */
  DEV_SECRET_ID?: string;
  DEV_SECRET_KEY?: string;
  /** 32 bytes, base64: encrypts stored SecretKeys (AES-GCM). `npm start` generates one. */
  MASTER_KEY?: string;
  /** The MASTER_KEY being rotated out: stored keys it encrypted still decrypt and are rewritten. */
  MASTER_KEY_PREVIOUS?: string;
}
