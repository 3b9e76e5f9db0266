import { type DocumentNode, getOperationAST, Kind, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Metrics } from '../metrics.ts';

/** The plain routes with a label of their own; any other path is `other`, so a scanner adds no series. */
const REST_ROUTES: ReadonlySet<string> = new Set(['/api/recommendations', '/health', '/ready', '/metrics', '/demo']);

export function restRouteLabel(pathname: string): string {
  return REST_ROUTES.has(pathname) ? pathname : 'other';
}

/**
 * `query:recommendations`, `mutation:trackEvent`, `query:items,recommendations`: the operation type and its
 * root field names, sorted. Bounded by the schema (only validated documents are labelled), unlike the
 * client's free `operationName`.
 */
export function operationLabel(document: DocumentNode, operationName?: string | null): string {
  const operation = getOperationAST(document, operationName);
  if (!operation) return 'unknown';
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])),
  );
  const fields = new Set<string>();
  const collect = (selectionSet: SelectionSetNode, seen: Set<string>) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) fields.add(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) collect(selection.selectionSet, seen);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) collect(fragment.selectionSet, seen);
      }
    }
  };
  collect(operation.selectionSet, new Set());
  return `${operation.operation}:${[...fields].sort().join(',')}`;
}

/**
 * Times GraphQL requests over HTTP into `pgw_request_duration_seconds{kind="graphql"}`, labelled with the
 * operation that ran; a request that never reached execution is `invalid` when refused (malformed body,
 * validation failure) and `none` otherwise (the GraphiQL page). Subscriptions over WebSocket have no HTTP
 * request and are left to the push metrics.
 */
export function useRequestMetrics(metrics: Metrics): Plugin {
  const started = new WeakMap<Request, { start: number; operation?: string }>();
  // Yoga's parse cache hands out one document object per query text, so a label is worked out once per
  // document and operation name (a walk of the selections was a visible share of every trackEvent).
  const labels = new WeakMap<DocumentNode, Map<string, string>>();
  const labelOf = (document: DocumentNode, operationName?: string | null) => {
    let byName = labels.get(document);
    if (!byName) {
      byName = new Map();
      labels.set(document, byName);
    }
    const name = operationName ?? '';
    let known = byName.get(name);
    if (known === undefined) {
      known = operationLabel(document, operationName);
      // A document names few operations, but a client may send any operationName: keep the valid ones only.
      if (known !== 'unknown') byName.set(name, known);
    }
    return known;
  };
  const label = (request: Request | undefined, document: DocumentNode, operationName?: string | null) => {
    const timing = request && started.get(request);
    if (timing) timing.operation = labelOf(document, operationName);
  };
  return {
    onRequest: ({ request }) => {
      started.set(request, { start: performance.now() });
    },
    onExecute: ({ args }) => label(args.contextValue.request, args.document, args.operationName),
    onSubscribe: ({ args }) => label(args.contextValue.request, args.document, args.operationName),
    onResponse: ({ request, response }) => {
      const timing = started.get(request);
      if (!timing) return;
      started.delete(request);
      const operation = timing.operation ?? (response.status >= 400 ? 'invalid' : 'none');
      metrics.requestDuration.observe({ kind: 'graphql', operation }, (performance.now() - timing.start) / 1000);
    },
  };
}
