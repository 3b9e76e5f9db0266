import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeFlagsOf, SERVING_ENTRIES, SERVING_NODE_FLAGS } from '../../src/node-flags.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** The Node flags of a command line that runs `src/<entry>`: those before the entry's path. */
function flagsBefore(command: readonly string[], entry: string): string[] {
  const at = command.indexOf(`src/${entry}`);
  if (at < 0) throw new Error(`no src/${entry} in ${command.join(' ')}`);
  return command.slice(0, at).filter((word) => word.startsWith('--') && word !== '--import');
}

describe('the serving processes’ Node flags', () => {
  it('when the gateway or the worker is started by npm, Docker or Compose then it gets the flags src/node-flags.ts lists', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    const starts: [string, string][] = [
      [scripts.start ?? '', 'server.ts'],
      [scripts['start:gateway'] ?? '', 'server.ts'],
      [scripts['start:worker'] ?? '', 'worker.ts'],
    ];
    const compose = read('docker-compose.yml');
    const commands = [...compose.matchAll(/command: (\[.*\])/g)].map((match) => JSON.parse(match[1]!) as string[]);
    const dockerfile = read('Dockerfile').match(/^CMD (\[.*\])$/m)?.[1];

    for (const [script, entry] of starts) expect(flagsBefore(script.split(' '), entry)).toEqual(SERVING_NODE_FLAGS);
    for (const entry of SERVING_ENTRIES) {
      const command = commands.find((words) => words.includes(`src/${entry}`));
      expect(command && flagsBefore(command, entry)).toEqual(SERVING_NODE_FLAGS);
    }
    expect(flagsBefore(JSON.parse(dockerfile ?? '[]') as string[], 'server.ts')).toEqual(SERVING_NODE_FLAGS);
    // The trainer and the tools are not serving processes: they keep Node's defaults.
    const trainer = commands.find((words) => words.includes('src/trainer.ts'));
    expect(trainer && flagsBefore(trainer, 'trainer.ts')).toEqual([]);
    expect(nodeFlagsOf('trainer.ts')).toEqual([]);
  });
});
