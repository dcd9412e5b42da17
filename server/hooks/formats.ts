// Request bodies per subscription format: `json` (the envelope), `pagerduty`
// (Events API v2) and `slack` (incoming-webhook message). One `describe` serves both
// human-readable formats (HOUSE-RULES §12).
import type { HookEnvelope } from './events.ts';

export const HOOK_FORMATS = ['json', 'pagerduty', 'slack'] as const;
export type HookFormat = (typeof HOOK_FORMATS)[number];
type PdSeverity = 'critical' | 'error' | 'warning' | 'info';

const SEVERITY: Record<string, PdSeverity> = {
  critical: 'critical',
  fatal: 'critical',
  error: 'error',
  major: 'error',
  high: 'error',
  warning: 'warning',
  warn: 'warning',
  minor: 'warning',
  medium: 'warning',
  info: 'info',
  low: 'info',
};
const WARNING_TYPES = /^(alert\.|command\.failed|rollout\.paused|rollout\.cancelled|hook\.disabled)/;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

export function describe(env: HookEnvelope): { summary: string; severity: PdSeverity; source: string } {
  const d = env.data;
  const severity =
    SEVERITY[String(d.severity ?? '').toLowerCase()] ?? (WARNING_TYPES.test(env.type) ? 'warning' : 'info');
  const device = str(d.serial) ?? str(d.deviceId);
  const text =
    str(d.summary) ??
    str(d.title) ??
    str(d.message) ??
    str(d.name) ??
    (env.type === 'command.failed'
      ? `command ${str(d.commandType) ?? ''} ${str(d.state) ?? 'failed'}`.replace(/\s+/g, ' ')
      : undefined);
  const about = device
    ? `terminal ${device}${str(d.model) ? ` (${d.model})` : ''}`
    : env.subject
      ? `${env.subject.type} ${env.subject.id}`
      : '';
  const summary = [env.type, about, text].filter(Boolean).join(' · ');
  return { summary: summary.slice(0, 1024), severity, source: str(d.deviceId) ?? env.subject?.id ?? 'posfleet' };
}

const PD_ACTIONS: Record<string, 'trigger' | 'acknowledge' | 'resolve'> = {
  'alert.opened': 'trigger',
  'alert.acknowledged': 'acknowledge',
  'alert.resolved': 'resolve',
};

/** Events API v2: alert.* share `dedup_key` = the alert id, so acknowledge and resolve close the incident. */
export function pagerDutyBody(env: HookEnvelope, routingKey: string) {
  const action = PD_ACTIONS[env.type] ?? 'trigger';
  const alertId = str(env.data.alertId) ?? (env.subject?.type === 'alert' ? env.subject.id : undefined);
  const dedupKey = env.type.startsWith('alert.') && alertId ? alertId : env.id;
  const base = { routing_key: routingKey, event_action: action, dedup_key: dedupKey, client: 'posfleet' };
  if (action !== 'trigger') return base;
  const { summary, severity, source } = describe(env);
  return {
    ...base,
    payload: {
      summary,
      severity,
      source,
      timestamp: env.occurredAt,
      class: env.type,
      component: str(env.data.model),
      group: str(env.data.merchantId),
      custom_details: env,
    },
  };
}

const EMOJI: Record<PdSeverity, string> = {
  critical: ':rotating_light:',
  error: ':red_circle:',
  warning: ':warning:',
  info: ':information_source:',
};

export function slackBody(env: HookEnvelope) {
  const { summary, severity } = describe(env);
  const d = env.data;
  const fields = [
    ['Event', env.type],
    ['Severity', str(d.severity) ?? severity],
    ['Terminal', str(d.deviceId)],
    ['Model', str(d.model)],
    ['Merchant', str(d.merchantId)],
    ['Subject', env.subject ? `${env.subject.type} ${env.subject.id}` : undefined],
  ]
    .filter((f): f is [string, string] => f[1] !== undefined)
    .map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${v}` }));
  return {
    text: `${EMOJI[severity]} ${summary}`,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `${EMOJI[severity]} *${summary.replace(/[*_~`]/g, '')}*` } },
      { type: 'section', fields },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `${env.occurredAt} · ${env.id}` }] },
    ],
  };
}

export function renderBody(format: string, env: HookEnvelope, config: Record<string, unknown>): string {
  if (format === 'pagerduty') return JSON.stringify(pagerDutyBody(env, String(config.routingKey ?? '')));
  if (format === 'slack') return JSON.stringify(slackBody(env));
  return JSON.stringify(env);
}
