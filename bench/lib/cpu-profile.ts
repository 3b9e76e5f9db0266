// Top functions by self time in V8 CPU profiles (the .cpuprofile files `node --cpu-prof` writes), and the
// same time summed by package or source file, to see where an event's CPU goes:
//   BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench -- freshness …
//   node --import tsx bench/lib/cpu-profile.ts [--top 25] /tmp/prof/CPU.*.cpuprofile
// Written here because the profile format is small and documented (Chrome DevTools protocol, Profiler
// domain) and the tools that read it are interactive viewers, not summaries a note can quote.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self milliseconds per function (`name url:line`) and per place (package or file) in one profile. */
export function selfTimes(profile: Profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const where = place(frame.url);
    const name = `${frame.functionName || '(anonymous)'} ${where}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us / 1000);
    byPlace.set(where, (byPlace.get(where) ?? 0) + us / 1000);
  }
  return { totalMs: (profile.endTime - profile.startTime) / 1000, byFunction, byPlace };
}

/** `pkg` for code under node_modules, the path from src/ or bench/ for ours, the url otherwise. */
function place(url: string): string {
  if (!url) return '(native)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const ours = url.match(/\/((?:src|bench)\/.*)$/);
  return ours?.[1] ?? url.replace(/^file:\/\//, '');
}

function top(map: Map<string, number>, count: number, of: number) {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, ms]) => `${ms.toFixed(0).padStart(8)} ms ${((100 * ms) / of).toFixed(1).padStart(5)} %  ${name}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' } },
  });
  for (const file of positionals) {
    const { totalMs, byFunction, byPlace } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as Profile);
    const busy = [...byFunction].filter(([name]) => !name.startsWith('(idle)')).reduce((sum, [, ms]) => sum + ms, 0);
    console.log(`\n${file}: ${(totalMs / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(1)} s busy`);
    console.log('by place (self time):');
    for (const line of top(byPlace, 15, busy)) console.log(line);
    console.log('by function (self time):');
    for (const line of top(byFunction, Number(values.top), busy)) console.log(line);
  }
}
