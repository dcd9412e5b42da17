// The default rule set for POS terminals. Seeded once with fixed ids; an
// operator may edit or delete them (a deleted default stays deleted).
import type { NewRule } from './rules.schemas.ts';

type DefaultRule = NewRule & { id: string };

export const DEFAULT_RULES: DefaultRule[] = [
  {
    id: 'rule_battery_low', name: 'Battery low and not charging', metric: 'battery.pct', comparison: '<', threshold: 15, clearThreshold: 25,
    conditions: [{ metric: 'battery.charging', comparison: '==', value: false }], forCount: 2, severity: 'warning', action: 'alert',
    remediation: 'Ask the merchant to put the terminal on its charger; if it does not charge, check the charger and cradle contacts.',
  },
  {
    id: 'rule_battery_health', name: 'Battery worn (health below 60 %)', metric: 'battery.healthPct', comparison: '<', threshold: 60, clearThreshold: 65,
    forCount: 3, severity: 'warning', action: 'alert+ticket', ticket: { kind: 'battery_replacement', part: 'battery' },
    remediation: 'Replace the battery pack; a worn battery fails at the till under load.',
  },
  {
    id: 'rule_printer_paper', name: 'Printer out of paper', metric: 'printer.state', comparison: 'in', threshold: ['no_paper'],
    forCount: 2, severity: 'warning', action: 'alert', remediation: 'Ask the merchant to load a new paper roll.',
  },
  {
    id: 'rule_printer_fault', name: 'Printer jam, fault or overheating', metric: 'printer.state', comparison: 'in', threshold: ['jam', 'fault', 'overheat'],
    forCount: 3, severity: 'warning', action: 'alert+ticket', ticket: { kind: 'repair', part: 'printer' },
    remediation: 'Open the cover, clear the jam and let the head cool; if it persists, replace the print head.',
  },
  {
    id: 'rule_reader_errors', name: 'Card reader error rate high', metric: 'reader.errorRate', comparison: '>', threshold: 0.2, clearThreshold: 0.1,
    forCount: 3, severity: 'warning', action: 'alert+ticket', ticket: { kind: 'part_replacement', part: 'card_reader' },
    remediation: 'Clean the magnetic head and chip contacts with a cleaning card; replace the reader if errors continue.',
  },
  {
    id: 'rule_storage_full', name: 'Storage nearly full', metric: 'sys.storageFreePct', comparison: '<', threshold: 10, clearThreshold: 15,
    forCount: 3, severity: 'warning', action: 'alert', remediation: 'Send fetch_logs then a reboot to rotate logs; check for a stuck transaction queue.',
  },
  {
    id: 'rule_temperature_high', name: 'Temperature high', metric: 'temp.maxC', comparison: '>', threshold: 65, clearThreshold: 60,
    forCount: 2, severity: 'warning', action: 'alert', remediation: 'Move the terminal out of direct sun or away from heat; check the fan and vents.',
  },
  {
    id: 'rule_weak_signal', name: 'Weak network signal', metric: 'net.signalDbm', comparison: '<', threshold: -105, clearThreshold: -100,
    forCount: 3, severity: 'info', action: 'alert', remediation: 'Move the terminal or its base closer to the access point, or switch carrier/SIM.',
  },
  {
    id: 'rule_tamper', name: 'Tamper detected', metric: 'security.tamper', comparison: '==', threshold: true,
    forCount: 1, severity: 'critical', action: 'alert+ticket', ticket: { kind: 'repair', part: 'pinpad' },
    remediation: 'Take the terminal out of service now; the PIN pad must be inspected and re-keyed by the repair centre.',
  },
  {
    id: 'rule_reboot_loop', name: 'Reboot loop (more than 3 boots in an hour)', metric: 'sys.bootsLastHour', comparison: '>', threshold: 3, clearThreshold: 1,
    forCount: 1, severity: 'critical', action: 'alert', remediation: 'Fetch the logs; roll back the last update or reinstall the firmware.',
  },
  {
    id: 'rule_patch_old', name: 'Security patch older than 90 days', metric: 'security.patchAgeDays', comparison: '>', threshold: 90,
    forCount: 1, severity: 'warning', action: 'alert', remediation: 'Include the terminal in the next firmware rollout.',
  },
  {
    id: 'rule_clock_drift', name: 'Clock drift over 5 minutes', metric: 'clock.driftS', comparison: '>', threshold: 300, clearThreshold: 240,
    forCount: 3, severity: 'warning', action: 'alert', remediation: 'Check NTP reachability from the merchant network; a wrong clock breaks TLS and receipts.',
  },
  {
    id: 'rule_offline', name: 'Terminal offline', metric: 'presence', comparison: 'in', threshold: ['offline', 'missing'],
    forCount: 1, severity: 'warning', action: 'alert', remediation: 'Call the merchant: power, network cable or Wi-Fi, SIM.',
  },
  {
    id: 'rule_missing', name: 'Terminal missing (silent for 24 h)', metric: 'presence', comparison: '==', threshold: 'missing',
    forCount: 1, severity: 'critical', action: 'alert', remediation: 'Confirm with the merchant that the terminal is on site; if lost or stolen, suspend it.',
  },
];
