// The host rule of a webhook URL: no IP literal in a loopback, private, link-local, CGNAT or
// reserved range (IPv4, IPv6, and IPv4 embedded in IPv6), no local or internal hostname. Checked
// when a destination is configured and again before each attempt (events/delivery-object.ts).
//
// A hostname whose DNS answer is a private address is not caught here: a Worker cannot pin the
// address its fetch connects to, so only the network stops that.

/** Hostnames refused as such. */
const REFUSED_HOSTNAMES = new Set(["localhost"]);
/** Hostname suffixes refused (local or internal names). */
const REFUSED_HOSTNAME_SUFFIXES = [".localhost", ".internal", ".local"];

/** IPv4 ranges refused, as [first octets, prefix length, what the range is]. */
const REFUSED_IPV4_RANGES: readonly [readonly number[], number, string][] = [
  [[0], 8, "a this-network address (0.0.0.0/8)"],
  [[10], 8, "a private address (10.0.0.0/8)"],
  [[100, 64], 10, "a carrier-grade NAT address (100.64.0.0/10)"],
  [[127], 8, "a loopback address (127.0.0.0/8)"],
  [[169, 254], 16, "a link-local address (169.254.0.0/16)"],
  [[172, 16], 12, "a private address (172.16.0.0/12)"],
  [[192, 168], 16, "a private address (192.168.0.0/16)"],
  [[224], 4, "a multicast address (224.0.0.0/4)"],
  [[240], 4, "a reserved or broadcast address (240.0.0.0/4)"],
];

/** The 32-bit value of dotted-decimal IPv4 text, or undefined when it is not one. */
function ipv4Value(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^[0-9]{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** What a refused IPv4 address is, or undefined for a public one. */
function ipv4Problem(value: number): string | undefined {
  for (const [octets, prefix, what] of REFUSED_IPV4_RANGES) {
    let start = 0;
    for (let index = 0; index < 4; index += 1) start = start * 256 + (octets[index] ?? 0);
    const size = 2 ** (32 - prefix);
    if (value >= start && value < start + size) return what;
  }
  return undefined;
}

/** The eight 16-bit groups of IPv6 text (without brackets), or undefined when it is not IPv6. */
function ipv6Groups(text: string): number[] | undefined {
  let body = text.toLowerCase();
  // A dotted IPv4 tail (::ffff:127.0.0.1) is rewritten as its two hex groups.
  const lastColon = body.lastIndexOf(":");
  if (lastColon >= 0 && body.slice(lastColon + 1).includes(".")) {
    const v4 = ipv4Value(body.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    body = `${body.slice(0, lastColon + 1)}${Math.floor(v4 / 65536).toString(16)}:${(v4 % 65536).toString(16)}`;
  }
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const parse = (half: string): number[] | undefined => {
    if (half === "") return [];
    const groups: number[] = [];
    for (const group of half.split(":")) {
      if (!/^[0-9a-f]{1,4}$/.test(group)) return undefined;
      groups.push(Number.parseInt(group, 16));
    }
    return groups;
  };
  const head = parse(halves[0] ?? "");
  const rest = halves.length === 2 ? parse(halves[1] ?? "") : [];
  if (!head || !rest) return undefined;
  const given = [...head, ...rest];
  if (halves.length === 1) return given.length === 8 ? given : undefined;
  if (given.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - given.length).fill(0), ...rest];
}

/** The IPv4 address held in the last 32 bits of IPv6 groups. */
function embeddedIpv4(groups: number[]): number {
  return (groups[6] ?? 0) * 65536 + (groups[7] ?? 0);
}

/** What a refused IPv6 address is, or undefined for a public one. */
function ipv6Problem(groups: number[]): string | undefined {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0] = groups;
  const firstSixZero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  // ::/96 (IPv4-compatible, with :: and ::1) and ::ffff:0:0/96 (IPv4-mapped): the IPv4 address decides.
  if (firstSixZero && (g5 === 0 || g5 === 0xffff)) {
    const v4 = embeddedIpv4(groups);
    if (g5 === 0 && v4 === 0) return "the unspecified address (::)";
    if (g5 === 0 && v4 === 1) return "the loopback address (::1)";
    const problem = ipv4Problem(v4);
    return problem ? `${problem}, IPv4 in IPv6 (::ffff:0:0/96, ::/96)` : undefined;
  }
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    const problem = ipv4Problem(embeddedIpv4(groups));
    return problem ? `${problem}, through NAT64 (64:ff9b::/96)` : undefined;
  }
  if ((g0 & 0xfe00) === 0xfc00) return "a unique local address (fc00::/7)";
  if ((g0 & 0xffc0) === 0xfe80) return "a link-local address (fe80::/10)";
  if ((g0 & 0xffc0) === 0xfec0) return "a site-local address (fec0::/10)";
  if ((g0 & 0xff00) === 0xff00) return "a multicast address (ff00::/8)";
  return undefined;
}

/**
 * Why a webhook URL's host (`new URL(…).hostname`, which the WHATWG parser has already normalised:
 * 127.1, 2130706433 and 0x7f000001 are 127.0.0.1) is refused, or undefined when it may be sent to.
 */
export function webhookHostProblem(hostname: string): string | undefined {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  if (host.startsWith("[") && host.endsWith("]")) {
    const groups = ipv6Groups(host.slice(1, -1));
    if (!groups) return `the host ${hostname} is not a valid IPv6 address`;
    const problem = ipv6Problem(groups);
    return problem ? `the host ${hostname} is ${problem}: webhooks go to public addresses only` : undefined;
  }
  const v4 = ipv4Value(host);
  if (v4 !== undefined) {
    const problem = ipv4Problem(v4);
    return problem ? `the host ${hostname} is ${problem}: webhooks go to public addresses only` : undefined;
  }
  if (REFUSED_HOSTNAMES.has(host) || REFUSED_HOSTNAME_SUFFIXES.some((suffix) => host.endsWith(suffix))) {
    return `the host ${hostname} is a local or internal name (localhost, *.localhost, *.internal, *.local)`;
  }
  if (!host.includes(".")) return `the host ${hostname} is a single-label name: give a fully qualified domain name`;
  return undefined;
}
