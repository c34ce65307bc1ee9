// The R2 buckets a namespace may read code packages from (code.bucket, SCF's Code.CosBucketName):
// the cos triggers' ownership rule, COS_TRIGGER_BUCKETS (`<bucket>=<namespace>[|...]`, never the
// platform's own buckets), and a binding of the Worker's for the bucket (CODE_SOURCE_BINDINGS).
// A bucket of one namespace is readable anywhere by it; a bucket shared by several namespaces (or
// every one, `*`) only under the key prefix `<namespace>/`, so no namespace reads another's code.
// Another namespace's bucket or prefix, an unbound bucket and an unlisted one get the same answer,
// naming only the namespace's own buckets: nothing is read from them, so no object's existence leaks.
import type { CodeBucketAccess } from "../functions/code-from-object";
import { PlatformError } from "../shared/errors";
import { cosBucketOwners } from "./cos";
import { ownsSource, type SourceOwners } from "./source-consumer";

/** The Worker's R2 bindings that hold users' objects. */
type UserBucketBinding = "UPLOADS";

/**
 * The binding of each bucket code packages may be read from (wrangler.toml [[r2_buckets]]). To
 * read code from another bucket: bind it in wrangler.toml, add it here, and give it to its
 * namespaces in COS_TRIGGER_BUCKETS.
 */
export const CODE_SOURCE_BINDINGS: Readonly<Record<string, UserBucketBinding>> = { "afp-uploads": "UPLOADS" };

/** True when the bucket is shared: several namespaces, or every one (`*`), own it. */
function isShared(owners: SourceOwners): boolean {
  return owners === "*" || owners.length > 1;
}

/** The key prefix a namespace's code objects must have in a shared bucket. */
export function sharedCodePrefix(namespace: string): string {
  return `${namespace}/`;
}

/**
 * The code bucket access of an environment: a bucket of CODE_SOURCE_BINDINGS the namespace owns,
 * any key when it owns it alone, keys under `<namespace>/` when it shares it.
 */
export function codeBucketAccess(env: Env): CodeBucketAccess {
  return {
    bucketFor(namespace, bucketName, key) {
      const owners = cosBucketOwners(env);
      const binding = Object.hasOwn(CODE_SOURCE_BINDINGS, bucketName) ? CODE_SOURCE_BINDINGS[bucketName] : undefined;
      const bucketOwners = owners.get(bucketName);
      const readable =
        binding !== undefined &&
        bucketOwners !== undefined &&
        ownsSource(bucketOwners, namespace) &&
        (!isShared(bucketOwners) || key.startsWith(sharedCodePrefix(namespace)));
      if (!readable) {
        const own = Object.keys(CODE_SOURCE_BINDINGS).flatMap((name) => {
          const nameOwners = owners.get(name);
          if (nameOwners === undefined || !ownsSource(nameOwners, namespace)) return [];
          return [isShared(nameOwners) ? `${name} (keys under ${sharedCodePrefix(namespace)})` : name];
        });
        throw new PlatformError(
          "INVALID_PARAMETER",
          `code.bucket and code.key (Code.CosBucketName, Code.CosObjectName): an object this namespace may read code from (COS_TRIGGER_BUCKETS: ${own.join(", ") || "none"}; a bucket shared by several namespaces is read only under the key prefix <namespace>/)`,
        );
      }
      return env[binding];
    },
  };
}
