import type { Logger } from 'pino';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: an operator API key. */
export interface Principal {
  keyId: string;
  name: string;
  role: Role;
}

export type Authenticator = (token: string) => Promise<Principal | null>;

export interface HttpEnv {
  Variables: {
    requestId: string;
    log: Logger;
    principal: Principal;
    authenticate: Authenticator;
  };
}

export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}
