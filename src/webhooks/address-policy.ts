import net from 'node:net';

type Family = 'ipv4' | 'ipv6';
type Range = [address: string, prefix: number, family: Family];

/**
 * Addresses a webhook does not reach unless KILN_WEBHOOK_ALLOW says so, by the word that allows
 * them. `loopback` includes the unspecified addresses, which reach this host too; `reserved`
 * (multicast, the future-use block) has no word and is only allowed by an explicit range.
 */
const RANGES: Record<'loopback' | 'private' | 'link-local' | 'reserved', Range[]> = {
  loopback: [
    ['127.0.0.0', 8, 'ipv4'],
    ['0.0.0.0', 8, 'ipv4'],
    ['::1', 128, 'ipv6'],
    ['::', 128, 'ipv6'],
  ],
  private: [
    ['10.0.0.0', 8, 'ipv4'],
    ['172.16.0.0', 12, 'ipv4'],
    ['192.168.0.0', 16, 'ipv4'],
    ['100.64.0.0', 10, 'ipv4'],
    ['fc00::', 7, 'ipv6'],
  ],
  'link-local': [
    ['169.254.0.0', 16, 'ipv4'],
    ['fe80::', 10, 'ipv6'],
  ],
  reserved: [
    ['224.0.0.0', 4, 'ipv4'],
    ['240.0.0.0', 4, 'ipv4'],
    ['ff00::', 8, 'ipv6'],
  ],
};
type Category = keyof typeof RANGES;

const blockListOf = (ranges: Range[]) => {
  const list = new net.BlockList();
  for (const [address, prefix, family] of ranges) list.addSubnet(address, prefix, family);
  return list;
};
const CATEGORIES = (Object.keys(RANGES) as Category[]).map((category) => ({ category, list: blockListOf(RANGES[category]) }));

// BlockList judges an IPv4 address written as IPv6 (`::ffff:10.0.0.1`) by the IPv4 rules.
const familyOf = (address: string): Family => (net.isIPv6(address) ? 'ipv6' : 'ipv4');

/**
 * Which addresses deliveries may connect to: any public one, and the private, loopback and
 * link-local ones KILN_WEBHOOK_ALLOW names (by word, address, range, or the host name used).
 */
export class AddressPolicy {
  private readonly hosts = new Set<string>();
  private readonly words = new Set<string>();
  private readonly allowed = new net.BlockList();

  constructor(allow: readonly string[]) {
    for (const entry of allow) {
      const [address, prefix] = entry.split('/');
      if (Object.hasOwn(RANGES, entry) && entry !== 'reserved') this.words.add(entry);
      else if (net.isIP(address!)) {
        if (prefix === undefined) this.allowed.addAddress(address!, familyOf(address!));
        else this.allowed.addSubnet(address!, Number(prefix), familyOf(address!));
      } else this.hosts.add(entry);
    }
  }

  /** Why `address` (which `host` resolved to) may not be reached, or undefined when it may. */
  refusal(host: string, address: string): string | undefined {
    if (this.hosts.has(host.toLowerCase().replace(/\.$/, ''))) return undefined;
    const family = familyOf(address);
    const found = CATEGORIES.find(({ list }) => list.check(address, family));
    if (!found || this.words.has(found.category) || this.allowed.check(address, family)) return undefined;
    return `${address} is a ${found.category} address (KILN_WEBHOOK_ALLOW does not name it)`;
  }
}
