// Server-side request forgery guard: webhook destinations on loopback, private,
// link-local, multicast or otherwise non-public addresses are refused unless
// HOOKS_ALLOW_PRIVATE is set. Checked when a subscription is saved and again on
// every connection (the `lookup` below), so DNS rebinding cannot slip past.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { unprocessable } from '../lib/errors.ts';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  blocked.addSubnet(net, bits, 'ipv6');

/** The IPv4 address embedded in an IPv4-mapped, -compatible, NAT64 or 6to4 IPv6 address. */
function embeddedV4(ip: string): string | null {
  const m = /^(?:::ffff:(?:0:)?|::|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (hex) {
    const [a, b] = [parseInt(hex[1], 16), parseInt(hex[2], 16)];
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  const sixToFour = /^2002:([0-9a-f]{1,4}):([0-9a-f]{1,4}):/i.exec(ip);
  if (sixToFour) return embeddedV4(`::ffff:${sixToFour[1]}:${sixToFour[2]}`);
  return null;
}

/** True for any address a webhook must not reach by default. */
export function isNonPublicAddress(address: string): boolean {
  const ip = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(ip);
  if (family === 4) return blocked.check(ip, 'ipv4');
  if (family !== 6) return true; // not an address at all: refuse
  const v4 = embeddedV4(ip);
  if (v4 && isIP(v4) === 4) return blocked.check(v4, 'ipv4');
  return blocked.check(ip, 'ipv6');
}

export class ForbiddenDestination extends Error {
  constructor(readonly address: string) {
    super(`destination ${address} is a private, loopback, link-local or multicast address`);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for node:http that fails the connection when any resolved address is not public. */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: object, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const bad = allowPrivate ? undefined : addresses.find((a) => isNonPublicAddress(a.address));
      if (bad) return callback(Object.assign(new ForbiddenDestination(bad.address), { code: 'EFORBIDDEN' }), []);
      if ((options as { all?: boolean }).all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

async function resolveAll(hostname: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true }, (err, addrs) => (err ? reject(err) : resolve(addrs.map((a) => a.address))));
  });
}

/** Subscription-time check: scheme, no credentials, and every resolved address public. */
export async function assertDeliverableUrl(raw: string, allowPrivate: boolean): Promise<void> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw unprocessable('invalid_hook_url', 'url is not an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw unprocessable('invalid_hook_url', 'url must be http or https');
  if (url.username || url.password) throw unprocessable('invalid_hook_url', 'url must not carry credentials');
  if (allowPrivate) return;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : await resolveAll(host);
  } catch {
    throw unprocessable('hook_url_unresolvable', `host ${host} does not resolve`);
  }
  const bad = addresses.find(isNonPublicAddress);
  if (bad)
    throw unprocessable(
      'hook_url_forbidden',
      `url resolves to ${bad}, a private, loopback, link-local or multicast address (HOOKS_ALLOW_PRIVATE allows it)`,
    );
}
