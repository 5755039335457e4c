/** The Lua guard for a script `name` whose raw source (with its header) is `raw`. */
export function arityGuard(name: string, raw: string): string;
/** `source` with the guard inserted after its leading comment block (the header). */
export function withArityGuard(name: string, raw: string, source: string): string;
