// What the device services need from the broker, as a port: modules decide and
// commit, then tell the terminal through this (HOUSE-RULES §5).
import type { Command, DeviceConfig } from '../../protocol/messages.ts';

export interface DeviceLink {
  sendCommand(deviceId: string, command: Command): Promise<boolean>;
  sendConfig(deviceId: string, config: DeviceConfig, opts?: { ifStale?: boolean }): Promise<void>;
  /** Cuts the terminal's live MQTT session, if any. */
  disconnect(deviceId: string): void;
  isConnected(deviceId: string): boolean;
}

/** A link whose broker is attached after construction (the broker needs the services first). */
export class LateLink implements DeviceLink {
  #target: DeviceLink | null = null;
  attach(target: DeviceLink): void {
    this.#target = target;
  }
  async sendCommand(deviceId: string, command: Command): Promise<boolean> {
    return this.#target ? this.#target.sendCommand(deviceId, command) : false;
  }
  async sendConfig(deviceId: string, config: DeviceConfig, opts?: { ifStale?: boolean }): Promise<void> {
    await this.#target?.sendConfig(deviceId, config, opts);
  }
  disconnect(deviceId: string): void {
    this.#target?.disconnect(deviceId);
  }
  isConnected(deviceId: string): boolean {
    return this.#target?.isConnected(deviceId) ?? false;
  }
}
