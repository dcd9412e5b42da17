// A bench's own PostgreSQL database on the server DATABASE_URL points at:
// made fresh before a run and dropped after, so runs never share rows. Its name
// ends with this run's id (the bench's pid), so that two benches running at the
// same time never drop each other's database, and bench/machine.ts can tell this
// run's PostgreSQL backends from everyone else's.
import pg from 'pg';

/** Ends the name of every database this run makes. */
export const RUN_ID = `_${process.pid}`;

export interface ScratchDb {
  /** The database's name: the name asked for and RUN_ID. */
  name: string;
  /** The scratch database's connection string. */
  url: string;
  /** Drops the database if it is there and creates it empty. */
  fresh(): Promise<void>;
  drop(): Promise<void>;
}

export function scratchDb(serverUrl: string, base: string): ScratchDb {
  const name = `${base}${RUN_ID}`;
  const url = Object.assign(new URL(serverUrl), { pathname: `/${name}` }).toString();
  async function admin(statement: string): Promise<void> {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  const drop = () => admin(`drop database if exists ${name} with (force)`);
  return {
    name,
    url,
    drop,
    fresh: async () => {
      await drop();
      await admin(`create database ${name}`);
    },
  };
}
