import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { postWebhook } from './sender.ts';
import { assertDeliverableUrl, isNonPublicAddress } from './ssrf.ts';

describe('SSRF guard', () => {
  it('refuses loopback, private, link-local, multicast and reserved IPv4', () => {
    for (const ip of [
      '127.0.0.1',
      '127.255.0.9',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.251',
      '239.255.255.250',
      '255.255.255.255',
      '198.18.0.1',
    ]) {
      expect(isNonPublicAddress(ip), ip).toBe(true);
    }
    for (const ip of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '93.184.216.34'])
      expect(isNonPublicAddress(ip), ip).toBe(false);
  });

  it('refuses the same in IPv6, including IPv4-mapped and NAT64 forms', () => {
    for (const ip of [
      '::1',
      '::',
      'fe80::1',
      'fc00::1',
      'fd12:3456::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      '::ffff:169.254.169.254',
      '64:ff9b::a9fe:a9fe',
      '2002:c0a8:0101::1',
      '[::1]',
      'fe80::1%eth0',
    ]) {
      expect(isNonPublicAddress(ip), ip).toBe(true);
    }
    for (const ip of ['2606:4700:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8'])
      expect(isNonPublicAddress(ip), ip).toBe(false);
  });

  it('checks URLs at subscription time unless private destinations are allowed', async () => {
    for (const url of [
      'http://127.0.0.1:9/x',
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://localhost:8080/',
      'https://169.254.169.254/latest',
      'http://10.0.0.5/',
    ]) {
      await expect(assertDeliverableUrl(url, false), url).rejects.toMatchObject({ code: 'hook_url_forbidden' });
    }
    await expect(assertDeliverableUrl('ftp://example.com/', false)).rejects.toMatchObject({ code: 'invalid_hook_url' });
    await expect(assertDeliverableUrl('https://user:pw@example.com/', false)).rejects.toMatchObject({
      code: 'invalid_hook_url',
    });
    await expect(assertDeliverableUrl('https://93.184.216.34/hook', false)).resolves.toBeUndefined();
    await expect(assertDeliverableUrl('http://127.0.0.1:9/x', true)).resolves.toBeUndefined();
  });

  it('refuses at delivery time too, for IP literals and for names that resolve to loopback', async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const literal = await postWebhook(`http://127.0.0.1:${port}/`, {}, '{}', {
        timeoutMs: 2_000,
        allowPrivate: false,
      });
      expect(literal.ok).toBe(false);
      expect(literal.error).toMatch(/not a public address/);
      const named = await postWebhook(`http://localhost:${port}/`, {}, '{}', { timeoutMs: 2_000, allowPrivate: false });
      expect(named.ok).toBe(false);
      expect(named.error).toMatch(/private, loopback/);
      expect(hits).toBe(0);
      const allowed = await postWebhook(`http://127.0.0.1:${port}/`, {}, '{}', {
        timeoutMs: 2_000,
        allowPrivate: true,
      });
      expect(allowed).toMatchObject({ ok: true, status: 200, response: 'ok' });
    } finally {
      server.close();
    }
  });
});
