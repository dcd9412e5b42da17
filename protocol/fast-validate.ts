// A fast yes for the common case, from the same zod schema. On the heartbeat
// path zod's parse was the largest source of garbage in the server (a copy of
// every object, a record per check) for payloads that are nearly always valid.
// `compileValidator` reads a schema's definition once and builds a plain
// predicate that says true only when zod would accept the value *and* return
// it unchanged (loose objects, no transforms or defaults), so the parsed JSON
// itself can be used. Anything else, including every doubt, says false and the
// caller asks zod, which gives the verdict and the error message. Schemas using
// what this does not know give null: zod alone, as before.
import type { z } from 'zod';

type Check = (v: unknown) => boolean;

interface Def {
  type: string;
  checks?: { _zod: { def: CheckDef } }[];
  shape?: Record<string, Schema>;
  catchall?: Schema;
  innerType?: Schema;
  values?: unknown[];
  entries?: Record<string, unknown>;
  keyType?: Schema;
  valueType?: Schema;
}
interface CheckDef {
  check: string;
  value?: number;
  inclusive?: boolean;
  format?: string;
  pattern?: RegExp;
  minimum?: number;
  maximum?: number;
  when?: unknown;
}
interface Schema {
  _zod: { def: Def };
}

class Unsupported extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A key that would set the prototype when zod copies it: left to zod. */
const PROTO = '__proto__';

function checksOf(def: Def): Check[] {
  return (def.checks ?? []).map(({ _zod: { def: c } }): Check => {
    // zod guards its length checks with "has a length" (true once the type matched); any other guard is a user's.
    if (c.when && !['_whenHasLength', '_whenHasSize'].includes((c.when as { name?: string }).name ?? ''))
      throw new Unsupported('conditional check');
    switch (c.check) {
      case 'greater_than': {
        const [x, inc] = [c.value!, c.inclusive];
        return inc ? (v) => (v as number) >= x : (v) => (v as number) > x;
      }
      case 'less_than': {
        const [x, inc] = [c.value!, c.inclusive];
        return inc ? (v) => (v as number) <= x : (v) => (v as number) < x;
      }
      case 'number_format':
        if (c.format !== 'safeint') throw new Unsupported(`number format ${c.format}`);
        return (v) => Number.isSafeInteger(v);
      case 'min_length':
        return (v) => (v as string).length >= c.minimum!;
      case 'max_length':
        return (v) => (v as string).length <= c.maximum!;
      case 'string_format': {
        if (c.format !== 'regex' || !c.pattern || c.pattern.global || c.pattern.sticky)
          throw new Unsupported(`string format ${c.format}`);
        const re = c.pattern;
        return (v) => re.test(v as string);
      }
      default:
        throw new Unsupported(`check ${c.check}`);
    }
  });
}

function withChecks(base: Check, checks: Check[]): Check {
  if (checks.length === 0) return base;
  return (v) => {
    if (!base(v)) return false;
    for (let i = 0; i < checks.length; i++) if (!checks[i](v)) return false;
    return true;
  };
}

function compile(schema: Schema): Check {
  const def = schema._zod.def;
  switch (def.type) {
    case 'unknown':
    case 'any':
      return () => true;
    case 'boolean':
      return withChecks((v) => typeof v === 'boolean', checksOf(def));
    case 'number':
      return withChecks((v) => typeof v === 'number' && Number.isFinite(v), checksOf(def));
    case 'string':
      return withChecks((v) => typeof v === 'string', checksOf(def));
    case 'literal': {
      const values = def.values!;
      if (!values.every((x) => x === null || ['string', 'number', 'boolean'].includes(typeof x)))
        throw new Unsupported('literal');
      return (v) => values.includes(v);
    }
    case 'enum': {
      const allowed = new Set(Object.values(def.entries!));
      return (v) => (typeof v === 'string' || typeof v === 'number') && allowed.has(v);
    }
    case 'optional': {
      const inner = compile(def.innerType!);
      return (v) => v === undefined || inner(v);
    }
    case 'record': {
      const key = compile(def.keyType!);
      const value = compile(def.valueType!);
      if (def.keyType!._zod.def.type !== 'string') throw new Unsupported('record key');
      return withChecks((v) => {
        if (!isObject(v)) return false;
        for (const k in v) if (k === PROTO || !key(k) || !value(v[k])) return false;
        return true;
      }, checksOf(def));
    }
    case 'object': {
      // Only loose objects come back as they went in; a stripping or strict one does not.
      if (def.catchall?._zod.def.type !== 'unknown') throw new Unsupported('non-loose object');
      const fields = Object.entries(def.shape!).map(([k, s]) => [k, compile(s)] as const);
      return withChecks((v) => {
        if (!isObject(v) || Object.hasOwn(v, PROTO)) return false;
        for (let i = 0; i < fields.length; i++) if (!fields[i][1](v[fields[i][0]])) return false;
        return true;
      }, checksOf(def));
    }
    default:
      throw new Unsupported(def.type);
  }
}

/** A predicate that is true only where `schema.safeParse(v)` succeeds returning `v` itself; null when the schema uses what it does not know. */
export function compileValidator(schema: z.ZodType): ((v: unknown) => boolean) | null {
  try {
    return compile(schema as unknown as Schema);
  } catch (err) {
    if (err instanceof Unsupported) return null;
    throw err;
  }
}
