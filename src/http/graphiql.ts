import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * Yoga's GraphiQL renderer with every script, style and editor worker inlined in the page, so GraphiQL
 * works without internet (Yoga's default loads them from a public CDN). The page is rendered once per set of
 * options and kept.
 */
export function makeOfflineGraphiQL(): (options: GraphiQLOptions) => Promise<string> {
  let rendered: { key: string; html: Promise<string> } | undefined;
  return (options) => {
    const key = JSON.stringify(options);
    if (rendered?.key !== key) {
      // About 9 MB of bundled GraphiQL: loaded on the first visit, not at every gateway start.
      const html = import('@graphql-yoga/render-graphiql').then(({ renderGraphiQL }) => renderGraphiQL(options));
      rendered = { key, html };
    }
    return rendered.html;
  };
}
