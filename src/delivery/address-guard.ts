import { BlockList, isIP } from 'node:net';

/**
 * Which addresses webhooks may connect to. Private, loopback, link-local, unique-local,
 * CGNAT, multicast, documentation and cloud-metadata ranges are refused unless an operator
 * opened a range with ALERTS_WEBHOOK_ALLOWED_CIDRS.
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
  ['100::', 64, 'discard'],
  ['2001:db8::', 32, 'documentation'],
  ['fc00::', 7, 'unique-local (includes fd00:ec2::254 cloud metadata)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
] as const;

/** IPv4 addresses carried inside IPv6 (mapped, NAT64, 6to4 and the like) are judged as IPv4. */
function embeddedIpv4(address: string): string | undefined {
  const lower = address.toLowerCase();
  const dotted = /^(?:::ffff:|::ffff:0:|64:ff9b::|::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const high = parseInt(hex[1]!, 16);
    const low = parseInt(hex[2]!, 16);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  return undefined;
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
