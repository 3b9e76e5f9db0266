// `npm run bench -- <name> [args…]` runs bench/<name>.ts, which prints its figures and writes
// bench/results/<name>.json through writeResults().
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const [name, ...rest] = process.argv.slice(2);
const available = readdirSync(benchDir)
  .filter((file) => file.endsWith('.ts') && file !== 'run.ts')
  .map((file) => file.slice(0, -'.ts'.length));

if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name> [args…]\navailable: ${available.join(', ')}`);
  process.exit(2);
}
const file = `${benchDir}${name}.ts`;
if (!existsSync(file)) throw new Error(`no benchmark at ${file}`);
process.argv = [process.argv[0] ?? 'node', file, ...rest];
await import(pathToFileURL(file).href);
