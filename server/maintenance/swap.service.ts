// Terminal swap: the spare takes over the merchant, tags and configuration of
// the broken terminal, which is retired; the ticket is resolved with the swap.
// Several steps through the devices service (each its own transaction): if one
// fails the next call of swap continues from where it stopped.
import type { Db } from '../db/index.ts';
import type { Devices } from '../devices/devices.service.ts';
import type { Alerts } from '../health/alerts.service.ts';
import type { Principal } from '../http/types.ts';
import { unprocessable } from '../lib/errors.ts';
import type { Tickets } from './tickets.service.ts';
import { isTicketTerminal, type TicketState } from './tickets.states.ts';

export function createSwap(deps: { db: Db; devices: Devices; tickets: Tickets; alerts: Alerts }) {
  const { devices, tickets, alerts } = deps;

  async function swap(actor: Principal, ticketId: string, spareDeviceId: string) {
    const t = await tickets.require(ticketId);
    if (isTicketTerminal(t.state as TicketState)) throw unprocessable('ticket_closed', `ticket ${t.id} is ${t.state}`);
    const old = await devices.require(t.device_id);
    const spare = await devices.require(spareDeviceId);
    if (spare.id === old.id) throw unprocessable('same_device', 'the spare must be another terminal');
    if (spare.status !== 'active')
      throw unprocessable('spare_not_active', `spare ${spare.id} is ${spare.status}; it must be active`);
    const { revision: _revision, v: _v, ...config } = old.config as Record<string, unknown>;
    await devices.update(actor, spare.id, {
      merchantId: old.merchant_id,
      tags: old.tags,
      timezone: old.timezone,
      config,
    });
    if (old.status !== 'decommissioned') await devices.decommission(actor, old.id);
    await alerts.resolveForDevice(old.id, 'device_retired');
    return tickets.update(
      actor,
      ticketId,
      { state: 'resolved', resolution: `swapped for ${spare.id} (serial ${spare.serial})` },
      { replacementDeviceId: spare.id },
    );
  }

  return { swap };
}

export type Swap = ReturnType<typeof createSwap>;
