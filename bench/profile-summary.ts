/** `tsx bench/profile-summary.ts FILE.cpuprofile [N]`: self time by function, and time under a few library functions. */
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }
const prof = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { nodes: Node[] };
const top = Number(process.argv[3] ?? 30);
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const total = prof.nodes.reduce((s, n) => s + n.hitCount, 0);
const name = (n: Node) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')}:${n.callFrame.lineNumber + 1}`;
const self = new Map<string, number>();
for (const n of prof.nodes) self.set(name(n), (self.get(name(n)) ?? 0) + n.hitCount);
const idle = [...self].filter(([k]) => k.startsWith('(idle)') || k.startsWith('(program)') || k.startsWith('(garbage')).reduce((s, [, v]) => s + v, 0);
console.log(`samples ${total}; idle+program+gc ${((idle / total) * 100).toFixed(1)}%`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
// Inclusive time of functions matched by name (each sample counted once per function name).
const inclusive = new Map<string, number>();
function walk(n: Node, seen: Set<string>): void {
  const fn = n.callFrame.functionName;
  const added = fn && !seen.has(fn);
  if (added) { seen.add(fn); inclusive.set(fn, (inclusive.get(fn) ?? 0) + subtotal(n)); }
  for (const c of n.children ?? []) walk(byId.get(c)!, seen);
  if (added) seen.delete(fn);
}
const sub = new Map<number, number>();
function subtotal(n: Node): number {
  let s = sub.get(n.id);
  if (s !== undefined) return s;
  s = n.hitCount + (n.children ?? []).reduce((a, c) => a + subtotal(byId.get(c)!), 0);
  sub.set(n.id, s);
  return s;
}
walk(prof.nodes[0]!, new Set());
const watch = (process.env.WATCH ?? 'callerFrame,describeConsumer,randomId,serialize,deserialize,measure,run,argv,evalsha,sendCommand,pack,unpack,write,processResponse,cachedOrRead').split(',');
console.log('inclusive:');
for (const w of watch) console.log(`${(((inclusive.get(w) ?? 0) / total) * 100).toFixed(1).padStart(5)}%  ${w}`);
