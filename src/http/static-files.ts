import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

/** A file served as is at a fixed path. */
export interface StaticFile {
  contentType: string;
  body: Buffer;
}

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/**
 * The browser pages the gateway serves beside the API, by path: the demo storefront, and the operations
 * dashboard with its scripts and uPlot (from node_modules, so nothing comes from a CDN). Read once at start.
 */
export async function loadStaticFiles(): Promise<ReadonlyMap<string, StaticFile>> {
  const web = (name: string) => new URL(`../../web/${name}`, import.meta.url);
  const require = createRequire(import.meta.url);
  const files: [path: string, file: URL | string, contentType: string][] = [
    ['/demo', web('index.html'), HTML],
    ['/dashboard', web('dashboard.html'), HTML],
    ['/dashboard/dashboard.js', web('dashboard.js'), JS],
    ['/dashboard/prometheus-text.js', web('prometheus-text.js'), JS],
    ['/dashboard/experiments', web('experiments.html'), HTML],
    ['/dashboard/experiments.js', web('experiments.js'), JS],
    ['/dashboard/uplot.min.js', require.resolve('uplot/dist/uPlot.iife.min.js'), JS],
    ['/dashboard/uplot.min.css', require.resolve('uplot/dist/uPlot.min.css'), CSS],
  ];
  return new Map(
    await Promise.all(
      files.map(async ([path, file, contentType]) => [path, { contentType, body: await readFile(file) }] as const),
    ),
  );
}
