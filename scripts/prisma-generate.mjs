// Runs `prisma generate`. Prisma 7's CLI downloads its schema-engine binary before generating, although
// generating never runs it, so on an offline machine generation fails. When no engine is installed we
// name a stand-in file; `prisma migrate`, which does need the engine, still downloads it as usual.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = { ...process.env };

function engineIsPresent() {
  if (env.PRISMA_SCHEMA_ENGINE_BINARY) return true;
  const dir = `${root}node_modules/@prisma/engines`;
  return existsSync(dir) && readdirSync(dir).some((name) => name.startsWith('schema-engine'));
}

if (!engineIsPresent()) {
  // Any existing file will do: `generate` checks that the path exists and never executes it.
  env.PRISMA_SCHEMA_ENGINE_BINARY = fileURLToPath(import.meta.url);
}

const result = spawnSync('npx', ['prisma', 'generate'], { cwd: root, env, stdio: 'inherit' });
process.exit(result.status ?? 1);
