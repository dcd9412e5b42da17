// HTTP schemas of maintenance tickets and reports.
import { SEVERITIES } from '../../protocol/messages.ts';
import { z } from '../http/openapi.ts';
import { PARTS, TICKET_KINDS, TICKET_STATES } from './tickets.states.ts';

export const newTicketSchema = z
  .object({
    deviceId: z.string().min(1).max(100),
    kind: z.enum(TICKET_KINDS),
    part: z.enum(PARTS).nullable().optional(),
    severity: z.enum(SEVERITIES).optional(),
    title: z.string().min(1).max(200).optional(),
    description: z.string().max(4000).optional(),
    damage: z.boolean().optional(),
    damageNote: z.string().max(1000).optional(),
    scheduledFor: z.string().datetime().optional(),
    assignee: z.string().max(200).optional(),
  })
  .openapi('NewTicket');
export type NewTicket = z.infer<typeof newTicketSchema>;

export const ticketPatchSchema = z
  .object({
    state: z.enum(TICKET_STATES).optional(),
    scheduledFor: z.string().datetime().nullable().optional(),
    assignee: z.string().max(200).nullable().optional(),
    notes: z.string().max(4000).nullable().optional(),
    damage: z.boolean().optional().openapi({ description: 'damage found: the ticket becomes billable' }),
    damageNote: z.string().max(1000).nullable().optional(),
    resolution: z.string().max(1000).optional(),
    severity: z.enum(SEVERITIES).optional(),
  })
  .openapi('TicketPatch');
export type TicketPatch = z.infer<typeof ticketPatchSchema>;

export const swapSchema = z.object({ spareDeviceId: z.string().min(1).max(100) }).openapi('TicketSwap');

export const ticketSchema = z
  .object({
    id: z.string(),
    deviceId: z.string(),
    kind: z.string(),
    part: z.string().nullable(),
    state: z.string(),
    severity: z.string(),
    title: z.string(),
    description: z.string().nullable(),
    source: z.string(),
    alertId: z.string().nullable(),
    merchantId: z.string().nullable(),
    model: z.string(),
    warranty: z.object({ billable: z.boolean(), reason: z.string() }),
    damage: z.boolean(),
    damageNote: z.string().nullable(),
    assignee: z.string().nullable(),
    notes: z.string().nullable(),
    slaDueAt: z.string(),
    slaBreached: z.boolean(),
    scheduledFor: z.string().nullable(),
    openedAt: z.string(),
    startedAt: z.string().nullable(),
    closedAt: z.string().nullable(),
    resolution: z.string().nullable(),
    replacementDeviceId: z.string().nullable(),
    createdBy: z.string().nullable(),
    updatedAt: z.string(),
  })
  .openapi('Ticket');

export const ticketQuery = z.object({
  state: z
    .enum([...TICKET_STATES, 'active'])
    .optional()
    .openapi({ description: 'active = not resolved or cancelled' }),
  device: z.string().max(100).optional(),
  kind: z.enum(TICKET_KINDS).optional(),
  part: z.enum(PARTS).optional(),
  merchant: z.string().max(100).optional(),
  source: z.enum(['rule', 'prediction', 'operator', 'inspection']).optional(),
});
export type TicketQuery = z.infer<typeof ticketQuery>;
