import { BlockList, isIP } from 'node:net';

/**
 * Which addresses webhooks may connect to. Private, loopback, link-local, unique-local,
 * CGNAT, multicast, documentation and cloud-metadata ranges, and IPv6 transition ranges that
 * tunnel to IPv4 (IPv4-compatible, 6to4, Teredo, local-use NAT64), are refused unless an
 * operator opened a range with ALERTS_WEBHOOK_ALLOWED_CIDRS.
 */
export interface AddressGuard {
  /** Why the address is refused, or undefined when it may be connected to. */
  refusal(address: string): string | undefined;
}

const BLOCKED_V4 = [
  ['0.0.0.0', 8, 'this network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local / cloud metadata'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
] as const;

const BLOCKED_V6 = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  // Deprecated IPv4-compatible addresses (::a.b.c.d, also written ::7f00:2): never a real
  // destination, and some systems tunnel them to the embedded IPv4 address.
  ['::', 96, 'IPv4-compatible (deprecated)'],
  ['64:ff9b:1::', 48, 'local-use NAT64'],
  ['100::', 64, 'discard'],
  // Teredo and 6to4 tunnel to an IPv4 address carried inside; no webhook receiver needs them.
  ['2001::', 32, 'Teredo'],
  ['2001:db8::', 32, 'documentation'],
  ['2002::', 16, '6to4'],
  ['3fff::', 20, 'documentation'],
  ['fc00::', 7, 'unique-local (includes fd00:ec2::254 cloud metadata)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
] as const;

/** The eight 16-bit groups of a valid IPv6 address, in any of its textual forms. */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(2).map(Number) as [number, number, number, number];
    text = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const [head = '', tail] = text.split('::');
  if (tail === undefined) return parse(head);
  const start = parse(head);
  const end = parse(tail);
  return [...start, ...new Array<number>(8 - start.length - end.length).fill(0), ...end];
}

/**
 * IPv4 addresses carried inside IPv6 are judged as IPv4: IPv4-mapped (::ffff:0:0/96),
 * IPv4-translated (::ffff:0:0:0/96) and NAT64 (64:ff9b::/96), whatever the notation.
 */
function embeddedIpv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  const zeros = (from: number, to: number) => g.slice(from, to).every((group) => group === 0);
  const mapped = zeros(0, 5) && g[5] === 0xffff;
  const translated = zeros(0, 4) && g[4] === 0xffff && g[5] === 0;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6);
  if (!mapped && !translated && !nat64) return undefined;
  const high = g[6]!;
  const low = g[7]!;
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

export class CidrError extends Error {}

/** Parses `a.b.c.d/n` or `v6::/n` (a bare address means a single host). */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const [address = '', prefixText] = text.trim().split('/');
  const version = isIP(address);
  if (version === 0) throw new CidrError(`"${text}" is not an IP address or CIDR range`);
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
    throw new CidrError(`"${text}" has an invalid prefix length (0 to ${max})`);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export function createAddressGuard(allowedCidrs: readonly string[] = []): AddressGuard {
  const allowed = new BlockList();
  for (const cidr of allowedCidrs) {
    const { address, prefix, family } = parseCidr(cidr);
    allowed.addSubnet(address, prefix, family);
  }
  const blocked: { list: BlockList; reason: string }[] = [
    ...BLOCKED_V4.map(([net, prefix, reason]) => {
      const list = new BlockList();
      list.addSubnet(net, prefix, 'ipv4');
      return { list, reason };
    }),
    ...BLOCKED_V6.map(([net, prefix, reason]) => {
      const list = new BlockList();
      list.addSubnet(net, prefix, 'ipv6');
      return { list, reason };
    }),
  ];

  return {
    refusal(raw) {
      const address = raw.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
      const version = isIP(address);
      if (version === 0) return 'is not an IP address';
      const v4 = version === 4 ? address : embeddedIpv4(address);
      const [checked, family] = v4 ? [v4, 'ipv4' as const] : [address, 'ipv6' as const];
      if (allowed.check(checked, family) || (v4 && allowed.check(address, 'ipv6'))) return undefined;
      const hit = blocked.find(({ list }) => list.check(checked, family));
      return hit && `${address} is a ${hit.reason} address`;
    },
  };
}
