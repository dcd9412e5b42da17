// Database names of one test run on PostgreSQL: each run (the vitest main
// process) has its own template and worker clones, so concurrent runs on one
// server do not trample each other.
export const RUN_ID = process.env.POSFLEET_TEST_RUN ?? String(process.pid);
export const TEMPLATE_DB = `posfleet_t${RUN_ID}_template`;
export const workerDb = (worker: string) => `posfleet_t${RUN_ID}_w${worker}`;
export const RUN_DB_PATTERN = /^posfleet_t(\d+)_/;

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
