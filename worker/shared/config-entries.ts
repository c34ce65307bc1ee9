/**
 * The entries of a comma-separated configuration var (INDEX_DATABASES, DISPATCH_QUEUE_PINS), each
 * trimmed, empty ones skipped. Past `maxChars` only the whole entries before it are read (a cut
 * entry could name something else), and a problem says so, naming the var.
 */
export function configEntries(
  text: string | undefined,
  varName: string,
  maxChars: number,
): { entries: string[]; problems: string[] } {
  const problems: string[] = [];
  let spec = text ?? "";
  if (spec.length > maxChars) {
    problems.push(`${varName} is longer than ${maxChars} characters: the rest is ignored`);
    spec = spec.slice(0, Math.max(0, spec.lastIndexOf(",", maxChars)));
  }
  const entries = spec
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  return { entries, problems };
}
