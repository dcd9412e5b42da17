// Errors of the firmware tooling. Each carries a snake_case code so the CLI and
// the server's upload route can map it without parsing messages.

export type PackageProblemCode =
  | 'bad_magic'
  | 'truncated'
  | 'header_too_large'
  | 'header_invalid'
  | 'manifest_invalid'
  | 'bad_signature'
  | 'key_id_mismatch'
  | 'size_mismatch'
  | 'sha256_mismatch'
  | 'expired';

/** One thing wrong with a package; `field` names the manifest field when there is one. */
export interface PackageProblem {
  code: PackageProblemCode;
  message: string;
  field?: string;
}

export class FirmwareError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'FirmwareError';
  }
}

/** A package that cannot be read or trusted; `problems` lists every finding (at least one). */
export class PackageError extends FirmwareError {
  readonly problems: PackageProblem[];
  constructor(problems: PackageProblem[]) {
    super(problems[0].code, problems.map((p) => p.message).join('; '));
    this.name = 'PackageError';
    this.problems = problems;
  }
}

export function problem(code: PackageProblemCode, message: string, field?: string): PackageProblem {
  return field === undefined ? { code, message } : { code, message, field };
}
