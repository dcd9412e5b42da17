// A small client of the posfleet HTTP API (/api/v1, docs/api.md): JSON in and
// out, the API's error body turned into one line and an exit code.
import { CliError, EXIT, type ExitCode } from './exit-codes.ts';
import type { CliIo } from './io.ts';

export type Query = Record<string, string | number | boolean | undefined>;

export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(exitFor(status), message);
  }
}

function exitFor(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  return EXIT.failed;
}

export interface ApiClient {
  readonly url: string;
  call<T = unknown>(method: string, path: string, opts?: { query?: Query; body?: unknown }): Promise<T>;
  /** A request with any body (a stream, bytes); answers the raw Response after checking its status. */
  send(
    method: string,
    path: string,
    init: { body?: NonNullable<RequestInit['body']>; headers?: Record<string, string> },
  ): Promise<Response>;
}

export function apiPath(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return `/api/v1${path}${qs ? `?${qs}` : ''}`;
}

export function createClient(io: CliIo, url: string, token: string): ApiClient {
  async function send(
    method: string,
    path: string,
    init: { body?: NonNullable<RequestInit['body']>; headers?: Record<string, string> },
  ): Promise<Response> {
    let res: Response;
    try {
      res = await io.fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...init.headers },
        body: init.body,
        duplex: init.body && typeof init.body === 'object' && 'getReader' in init.body ? 'half' : undefined,
      } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        EXIT.unreachable,
        `cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    if (res.ok) return res;
    const text = await res.text();
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      /* not the API's error shape */
    }
    const code = error?.code ?? `http_${res.status}`;
    throw new ApiError(
      res.status,
      code,
      `${method} ${path.split('?')[0]}: ${res.status} ${code}: ${error?.message ?? text.slice(0, 200)}`,
    );
  }

  return {
    url,
    send,
    async call(method, path, opts = {}) {
      const hasBody = opts.body !== undefined;
      const res = await send(method, apiPath(path, opts.query), {
        body: hasBody ? JSON.stringify(opts.body) : undefined,
        headers: hasBody ? { 'content-type': 'application/json' } : {},
      });
      const text = await res.text();
      return (text ? JSON.parse(text) : null) as never;
    },
  };
}
