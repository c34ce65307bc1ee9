// Worker secrets are not in wrangler.toml, so `wrangler types` cannot see them; they are declared
// here and merged into the generated Env.
interface Env {
  /** Development credentials (all namespaces); `npm start` seeds them. */
  DEV_SECRET_ID?: string;
  DEV_SECRET_KEY?: string;
}
