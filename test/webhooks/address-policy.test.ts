import { describe, expect, it } from 'vitest';
import { AddressPolicy } from '../../src/webhooks/address-policy.js';

describe('the addresses webhooks may reach', () => {
  const none = new AddressPolicy([]);

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['0.0.0.0', 'loopback'],
    ['::', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['fe80::1', 'link-local'],
    ['224.0.0.1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.7', 'private'],
    ['::ffff:a00:7', 'private'],
  ])('refuses %s, a %s address, when nothing allows it', (address, category) => {
    expect(none.refusal('example.com', address)).toBe(`${address} is a ${category} address (KILN_WEBHOOK_ALLOW does not name it)`);
  });

  it.each(['93.184.215.14', '172.32.0.1', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8'])('lets %s, a public address, through', (address) => {
    expect(none.refusal('example.com', address)).toBeUndefined();
  });

  it('allows what KILN_WEBHOOK_ALLOW names: a kind of address, an address, a range or a host name', () => {
    const policy = new AddressPolicy(['loopback', '10.0.0.0/8', '192.168.1.20', 'receiver.internal']);
    expect(policy.refusal('localhost', '127.0.0.1')).toBeUndefined();
    expect(policy.refusal('localhost', '::1')).toBeUndefined();
    expect(policy.refusal('x', '10.200.0.1')).toBeUndefined();
    expect(policy.refusal('x', '::ffff:10.200.0.1')).toBeUndefined();
    expect(policy.refusal('x', '192.168.1.20')).toBeUndefined();
    expect(policy.refusal('x', '192.168.1.21')).toMatch(/private/);
    expect(policy.refusal('receiver.internal', '172.20.0.5')).toBeUndefined();
    expect(policy.refusal('receiver.internal.', '172.20.0.5')).toBeUndefined();
    expect(policy.refusal('other.internal', '172.20.0.5')).toMatch(/private/);
    expect(policy.refusal('x', '169.254.169.254')).toMatch(/link-local/);
  });

  it('allows multicast and reserved addresses only by an explicit range', () => {
    expect(new AddressPolicy(['private', 'loopback', 'link-local', 'reserved']).refusal('x', '239.1.1.1')).toMatch(/reserved/);
    expect(new AddressPolicy(['239.0.0.0/8']).refusal('x', '239.1.1.1')).toBeUndefined();
  });
});
